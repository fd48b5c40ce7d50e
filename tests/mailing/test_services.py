"""The announcement operations themselves: rules and audit entries, whoever calls them."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.audit.services import COMMAND_LINE, Actor
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import drafts, services
from jeg_contacts.mailing.models import AnnouncementStatus, Delivery
from tests.mailing.conftest import add_contacts


def _draft(**criteria) -> drafts.AnnouncementDraft:
    return drafts.AnnouncementDraft(subject_en="Workshop", body_en="News.", criteria=criteria)


def _entries() -> list[tuple[str, str]]:
    return [
        (entry.action, entry.actor)
        for entry in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
    ]


def test_start_sending_to_nobody_is_refused_and_queues_nothing(mail_app):
    add_contacts(mail_app, ["a@example.org"])
    with mail_app.app_context():
        announcement = drafts.save_draft(_draft(country=["KZ"]), by=COMMAND_LINE)
        with pytest.raises(ValidationFailed) as refused:
            services.start_sending(announcement, by=COMMAND_LINE)
        assert refused.value.field == "audience"
        assert "nobody to send to" in refused.value.message
        assert announcement.status is AnnouncementStatus.DRAFT
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


@pytest.mark.parametrize(
    ("ahead", "message"),
    [(timedelta(days=400), "within a year"), (timedelta(0), "in the future")],
    ids=["too-far", "now"],
)
def test_a_schedule_outside_the_window_is_refused(mail_app, ahead, message):
    add_contacts(mail_app, ["a@example.org"])
    with mail_app.app_context():
        announcement = drafts.save_draft(_draft())
        with pytest.raises(ValidationFailed) as refused:
            services.start_sending(announcement, utcnow() + ahead)
        assert refused.value.field == "send_at" and message in refused.value.message
        assert announcement.status is AnnouncementStatus.DRAFT


def test_each_operation_audits_itself_with_the_actor_it_is_given(mail_app):
    add_contacts(mail_app, ["a@example.org"])
    someone = Actor(None, "a script")
    with mail_app.app_context():
        announcement = drafts.save_draft(_draft(), by=someone)
        services.start_sending(announcement, utcnow() + timedelta(hours=1), by=someone)
        services.pause(announcement, by=someone)
        services.resume(announcement, by=someone)
        services.cancel(announcement, by=someone)
        copy = drafts.copy_as_draft(announcement, by=someone)
        services.cancel(copy)  # no actor given, nobody signed in
        assert _entries() == [
            ("announcement.created", "a script"),
            ("announcement.scheduled", "a script"),
            ("announcement.paused", "a script"),
            ("announcement.resumed", "a script"),
            ("announcement.cancelled", "a script"),
            ("announcement.created", "a script"),
            ("announcement.cancelled", "system"),
        ]
