"""Dashboard figures: counted in the database, per calendar month in UTC."""

from datetime import UTC, datetime

from flask import Flask

from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.dashboard.services import dashboard_figures, month_starts, signups_by_month
from jeg_contacts.extensions import db
from tests.dashboard.community import add_contact

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def test_month_starts_run_back_across_the_new_year() -> None:
    starts = month_starts(NOW, 4)

    assert starts == [
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    ]


def test_sign_ups_fall_in_their_calendar_month(app: Flask) -> None:
    with app.app_context():
        for moment in (
            datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),  # last second of February
            datetime(2026, 3, 1, 0, 0, tzinfo=UTC),  # first instant of March
            datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
            datetime(2024, 3, 31, 12, 0, tzinfo=UTC),  # 24 months back is April 2024
        ):
            add_contact(f"{moment:%Y%m%d%H%M%S}@example.org", None, created_at=moment)
        db.session.commit()

        months = signups_by_month(NOW)

    assert len(months) == 24
    assert months[0].start == datetime(2024, 4, 1, tzinfo=UTC)
    assert [(month.start.month, month.value) for month in months[-2:]] == [(2, 1), (3, 2)]
    assert sum(month.value for month in months) == 3
    assert [month.partial for month in months].count(True) == 1
    assert months[-1].partial


def test_totals_count_every_status_and_recent_sign_ups(app: Flask) -> None:
    with app.app_context():
        add_contact("old@example.org", None, created_at=datetime(2026, 1, 1, tzinfo=UTC))
        add_contact(
            "new@example.org",
            None,
            status=ContactStatus.PENDING,
            created_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
        add_contact(
            "gone@example.org",
            None,
            status=ContactStatus.BOUNCED,
            created_at=datetime(2026, 2, 20, tzinfo=UTC),
        )
        db.session.commit()

        figures = dashboard_figures(NOW)

    assert figures.contacts == 3
    assert figures.active == 1
    assert figures.pending == 1
    assert figures.contacts_by_status[ContactStatus.BOUNCED] == 1
    assert figures.contacts_by_status[ContactStatus.ERASED] == 0
    assert figures.signups_last_30_days == 2
    assert figures.by_country.total == 1  # only active subscribers are broken down
