"""GET /admin: totals as cards, charts as inline SVG with the same numbers in tables."""

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts.contacts.models import ContactStatus, StakeholderType
from jeg_contacts.extensions import db, utcnow
from tests.dashboard.community import add_contact, add_organisation, known_community


def card(page: str, card_id: str) -> str:
    match = re.search(rf'id="{card_id}".*?<span class="number">([^<]*)</span>', page, re.S)
    assert match, f"no card {card_id}"
    return match.group(1)


def chart(page: str, chart_id: str) -> str:
    """The <svg> of one chart."""
    match = re.search(rf'<svg[^>]* id="{chart_id}".*?</svg>', page, re.S)
    assert match, f"no chart {chart_id}"
    return match.group(0)


def bars(svg: str) -> list[tuple[str, str]]:
    """(full label, printed value) of every bar, top to bottom or left to right."""
    found = []
    for group in re.findall(r'<g class="bar">(.*?)</g>', svg, re.S):
        label = re.search(r"<title>(.*): [\d,]+ [a-z -]+</title>", group).group(1)
        value = re.search(r'class="bar-value"[^>]*>([^<]*)</text>', group).group(1)
        found.append((label, value))
    return found


def axis_labels(svg: str) -> list[str]:
    return re.findall(r'class="bar-label"[^>]*>([^<]*)</text>', svg)


def table(page: str, chart_id: str) -> list[tuple[str, str]]:
    section = re.search(
        rf'<section class="chart-panel[^"]*" aria-labelledby="{chart_id}-heading">(.*?)</section>',
        page,
        re.S,
    )
    assert section, f"no section for {chart_id}"
    return re.findall(
        r'<tr><th scope="row">([^<]*)</th><td class="number">([^<]*)</td></tr>', section.group(1)
    )


def test_anonymous_visitors_are_sent_to_the_login_page(client: FlaskClient) -> None:
    response = client.get("/admin")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_empty_database_shows_how_to_get_started(viewer_client: FlaskClient) -> None:
    page = viewer_client.get("/admin").get_data(as_text=True)

    assert "No contacts yet" in page
    assert "http://jeg.test/signup" in page
    assert "flask --app wsgi demo-data --contacts 2000" in page
    assert "<svg" not in page


def test_viewer_sees_totals_that_match_the_data(app: Flask, viewer_client: FlaskClient) -> None:
    known_community(app)

    response = viewer_client.get("/admin")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "No contacts yet" not in page
    assert card(page, "total-active") == "5"
    assert card(page, "total-pending") == "1"
    assert card(page, "total-recent") == "2"
    assert card(page, "total-organisations") == "3"
    assert card(page, "total-contacts") == "7"
    assert re.search(r'id="status-unsubscribed">1<', page)
    assert re.search(r'id="status-bounced">0<', page)


def test_the_recent_sign_ups_card_says_plainly_what_it_counts(
    app: Flask, viewer_client: FlaskClient
) -> None:
    known_community(app)

    page = viewer_client.get("/admin").get_data(as_text=True)

    recent = re.search(r'id="total-recent">.*?<span class="card-hint">([^<]*)</span>', page, re.S)
    assert recent and recent.group(1) == "new contacts in any status"
    assert "whatever became of them" not in page


def test_charts_have_one_labelled_bar_per_category(app: Flask, viewer_client: FlaskClient) -> None:
    known_community(app)

    page = viewer_client.get("/admin").get_data(as_text=True)

    assert bars(chart(page, "by-type")) == [
        ("National authority", "2"),
        ("Operator or industry", "2"),
        ("River basin or lake commission", "1"),
    ]
    assert bars(chart(page, "by-country")) == [("Germany", "2"), ("Romania", "2"), ("Austria", "1")]
    assert bars(chart(page, "by-language")) == [("English", "3"), ("French", "1"), ("Russian", "1")]
    topic_bars = dict(bars(chart(page, "by-topic")))
    # Every offered topic has a bar; the pending and unsubscribed contacts' pipelines don't count.
    assert len(topic_bars) == 10
    assert topic_bars["General news from the Joint Expert Group"] == "3"
    assert topic_bars["Safety of oil terminals"] == "2"
    assert topic_bars["Pipeline safety"] == "1"
    assert topic_bars["Safety of tailings management facilities"] == "0"


def test_long_labels_are_shortened_on_the_axis_only(app: Flask, viewer_client: FlaskClient) -> None:
    known_community(app)

    page = viewer_client.get("/admin").get_data(as_text=True)

    assert axis_labels(chart(page, "by-type")) == [
        "National authority",
        "Operator or industry",
        "River basin or lake commiss…",
    ]
    assert ("River basin or lake commission", "1") in table(page, "by-type")


def test_each_chart_is_an_accessible_image_with_the_numbers_in_a_table(
    app: Flask, viewer_client: FlaskClient
) -> None:
    known_community(app)

    page = viewer_client.get("/admin").get_data(as_text=True)

    for chart_id in ("signups", "by-type", "by-country", "by-topic", "by-language"):
        svg = chart(page, chart_id)
        assert 'role="img"' in svg
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in svg
        assert re.search(rf'<title id="{chart_id}-title">[^<]+</title>', svg)
        assert re.search(rf'<desc id="{chart_id}-desc">[^<]+</desc>', svg)
        assert len(table(page, chart_id)) == svg.count('<g class="bar">')
    assert table(page, "by-country") == [("Germany", "2"), ("Romania", "2"), ("Austria", "1")]
    desc = re.search(r'<desc id="by-country-desc">([^<]+)</desc>', page).group(1)
    assert "Germany has the most active subscribers: 2 of 5." in desc


def test_sign_ups_per_month_cover_the_last_two_years(
    app: Flask, viewer_client: FlaskClient
) -> None:
    known_community(app)
    with app.app_context():
        add_contact("old@uba.example", None, created_at=utcnow() - timedelta(days=3 * 365))
        db.session.commit()

    page = viewer_client.get("/admin").get_data(as_text=True)

    svg = chart(page, "signups")
    assert svg.count('<g class="bar">') == 24
    months = table(page, "signups")
    assert len(months) == 24
    assert months[-1][0].endswith("(so far)")
    # Seven sign-ups in the window; the three-year-old one is outside it.
    assert sum(int(value) for _, value in months) == 7
    assert int(months[-1][1]) + int(months[-2][1]) >= 2  # the two recent ones


def test_country_chart_keeps_the_top_15_and_says_what_is_left_out(
    app: Flask, viewer_client: FlaskClient
) -> None:
    codes = ["DE", "FR", "IT", "ES", "PL", "RO", "HU", "CZ", "SK", "AT", "CH", "BE", "NL", "SE"]
    codes += ["FI", "NO", "DK"]
    with app.app_context():
        ministry = add_organisation("Ministry of Environment", StakeholderType.NATIONAL_AUTHORITY)
        for rank, code in enumerate(codes):
            for number in range(len(codes) - rank):  # DE has 17 contacts, DK 1
                add_contact(f"{code}{number}@example.org", ministry, country=code)
        db.session.commit()

    page = viewer_client.get("/admin").get_data(as_text=True)

    country_bars = bars(chart(page, "by-country"))
    assert len(country_bars) == 15
    assert country_bars[0] == ("Germany", "17")
    assert "Norway" not in dict(country_bars)
    assert "2 more countries with 3 active subscribers in all are not shown." in page


def test_contacts_without_organisation_or_country_are_counted_as_such(
    app: Flask, viewer_client: FlaskClient
) -> None:
    with app.app_context():
        add_contact("nobody@example.org", None, country=None)
        db.session.commit()

    page = viewer_client.get("/admin").get_data(as_text=True)

    assert bars(chart(page, "by-type")) == [("No organisation", "1")]
    assert bars(chart(page, "by-country")) == [("Not stated", "1")]


def test_charts_of_active_subscribers_wait_for_the_first_confirmation(
    app: Flask, viewer_client: FlaskClient
) -> None:
    with app.app_context():
        add_contact("new@example.org", None, status=ContactStatus.PENDING)
        db.session.commit()

    page = viewer_client.get("/admin").get_data(as_text=True)

    assert card(page, "total-pending") == "1"
    assert 'id="signups"' in page
    assert 'id="by-country"' not in page
    assert "Nothing to show yet: no active subscribers." in page


def test_labels_stay_english_after_browsing_the_public_site_in_french(
    app: Flask, viewer_client: FlaskClient
) -> None:
    known_community(app)
    viewer_client.get("/?lang=fr")

    page = viewer_client.get("/admin").get_data(as_text=True)

    assert "National authority" in page
    assert "Autorité nationale" not in page
