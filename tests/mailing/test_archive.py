"""The public archive: published announcements only, in the reader's language, no personal
details, and an Atom feed."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus
from tests.mailing.conftest import add_contacts

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _sent(app, *, published: bool = True, days_ago: int = 1, **texts: str) -> int:
    """An announcement that went out `days_ago` days ago."""
    values = {
        "subject_en": "Workshop on tailings safety",
        "body_en": "Dear {{ given_name }} {{ family_name }} of {{ organisation }},\n\n"
        "The **workshop** is in Almaty.",
        **texts,
    }
    with app.app_context():
        announcement = drafts.save_draft(drafts.AnnouncementDraft(kind="activity", **values))
        when = utcnow() - timedelta(days=days_ago)
        announcement.status = AnnouncementStatus.SENT
        announcement.started_at = announcement.finished_at = when
        announcement.published = published
        db.session.commit()
        return announcement.id


def test_empty_archive_says_so(client):
    response = client.get("/announcements?lang=en")
    assert response.status_code == 200
    assert "No announcements have been published yet." in response.get_data(as_text=True)


def test_only_published_announcements_are_listed_and_shown(app, client):
    published = _sent(app, subject_en="Checklist for oil terminals")
    hidden = _sent(app, published=False, subject_en="Internal note")
    with app.app_context():
        draft = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Not yet", body_en="Draft text")
        ).id
        db.session.commit()
    page = client.get("/announcements?lang=en").get_data(as_text=True)
    assert "Checklist for oil terminals" in page
    assert "Internal note" not in page and "Not yet" not in page
    assert client.get(f"/announcements/{published}").status_code == 200
    for announcement_id in (hidden, draft, 999, 2**40):
        assert client.get(f"/announcements/{announcement_id}").status_code == 404


def test_newest_first_with_pages(app, client):
    for number in range(22):
        _sent(app, subject_en=f"Announcement number {number}", days_ago=30 - number)
    first = client.get("/announcements?lang=en").get_data(as_text=True)
    assert first.index("Announcement number 21") < first.index("Announcement number 2<")
    assert "Announcement number 1<" not in first
    assert "Page 1 of 2" in first
    second = client.get("/announcements?page=2&lang=en").get_data(as_text=True)
    assert "Announcement number 1<" in second and "Announcement number 0<" in second
    assert "past the end" in client.get("/announcements?page=50").get_data(as_text=True)


def test_detail_is_sanitised_and_never_shows_a_recipients_details(app, client):
    add_contacts(app, ["zoe@example.org"], given_name="Zoë", family_name="Secretname")
    announcement_id = _sent(
        app,
        body_en="Dear {{ given_name }} {{ family_name }} of {{ organisation }},\n\n"
        "<script>alert(1)</script> [x](javascript:alert(1)) {{ config }}",
    )
    page = client.get(f"/announcements/{announcement_id}?lang=en").get_data(as_text=True)
    assert "Dear colleague of your organisation," in page
    assert "Zoë" not in page and "Secretname" not in page and "Anna" not in page
    assert "<script>alert" not in page and 'href="javascript' not in page
    assert "{{ config }}" in page and "test-secret-key" not in page
    assert "Activity" in page


def test_detail_in_the_readers_language_or_english_with_a_note(app, client):
    announcement_id = _sent(
        app,
        subject_fr="Atelier sur la sécurité des résidus",
        body_fr="Bonjour {{ given_name }}, l'**atelier** a lieu à Almaty.",
    )
    french = client.get(f"/announcements/{announcement_id}?lang=fr").get_data(as_text=True)
    assert '<article lang="fr"' in french
    assert "Atelier sur la sécurité des résidus" in french
    assert "Bonjour collègue, l'<strong>atelier</strong>" in french
    assert "n'existe pas dans votre langue" not in french
    assert "Autres versions linguistiques" in french and 'hreflang="en"' in french

    russian = client.get(f"/announcements/{announcement_id}?lang=ru").get_data(as_text=True)
    assert '<html lang="ru">' in russian
    assert '<article lang="en"' in russian
    assert "Workshop on tailings safety" in russian
    assert "Это объявление отсутствует на вашем языке" in russian
    assert "Dear colleague" in russian  # the English text gets English neutral words


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "fr",
            ["Annonces", "Abonnez-vous pour les recevoir par courriel", "Activité", "en anglais"],
        ),
        ("ru", ["Объявления", "Подпишитесь, чтобы получать их", "Мероприятие", "на английском"]),
    ],
)
def test_archive_pages_are_translated(app, client, language, expected):
    announcement_id = _sent(app)
    listing = client.get(f"/announcements?lang={language}").get_data(as_text=True)
    for text in expected:
        assert text in listing
    assert "Sign up to receive" not in listing and "Announcements</h1>" not in listing
    detail = client.get(f"/announcements/{announcement_id}").get_data(as_text=True)
    assert f'<html lang="{language}">' in detail
    assert "Sign up to receive" not in detail and "All announcements" not in detail


@pytest.mark.parametrize(
    ("language", "link"),
    [("en", "Read past announcements"), ("fr", "Lire les annonces précédentes"),
     ("ru", "Читать предыдущие объявления")],
)  # fmt: skip
def test_landing_page_links_to_the_archive(client, language, link):
    page = client.get(f"/?lang={language}").get_data(as_text=True)
    assert f'<a href="/announcements">{link}</a>' in page


def _feed(client, query: str = ""):
    response = client.get(f"/announcements/feed.atom{query}")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    assert response.mimetype_params.get("charset") == "utf-8"
    return ET.fromstring(response.data)


def test_atom_feed_lists_published_announcements(app, client):
    older = _sent(app, subject_en="Older news", days_ago=5)
    newer = _sent(
        app, subject_en="Newer news", days_ago=1, body_en="Dear {{ given_name }}: <b>text</b>"
    )
    _sent(app, published=False, subject_en="Unpublished news")

    feed = _feed(client, "?lang=en")

    assert feed.tag == f"{ATOM}feed"
    assert feed.get(XML_LANG) == "en"
    assert feed.findtext(f"{ATOM}id") == "http://jeg.test/announcements/feed.atom?lang=en"
    assert "Joint Expert Group" in feed.findtext(f"{ATOM}title")
    assert feed.findtext(f"{ATOM}author/{ATOM}name")
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == "http://jeg.test/announcements/feed.atom?lang=en"
    assert links["alternate"] == "http://jeg.test/announcements?lang=en"
    entries = feed.findall(f"{ATOM}entry")
    assert [entry.findtext(f"{ATOM}title") for entry in entries] == ["Newer news", "Older news"]
    assert feed.findtext(f"{ATOM}updated") == entries[0].findtext(f"{ATOM}updated")
    first = entries[0]
    assert first.findtext(f"{ATOM}id") == f"http://jeg.test/announcements/{newer}?lang=en"
    assert first.find(f"{ATOM}link").get("href") == first.findtext(f"{ATOM}id")
    assert first.find(f"{ATOM}content").get("type") == "html"
    content = first.findtext(f"{ATOM}content")
    assert "Dear colleague" in content and "&lt;b&gt;text&lt;/b&gt;" in content
    assert first.find(f"{ATOM}category").get("term") == "activity"
    with app.app_context():
        assert db.session.get(Announcement, older).published


def test_atom_feed_follows_the_language_asked_for(app, client):
    _sent(app, subject_fr="Atelier", body_fr="Bonjour {{ given_name }}")
    _sent(app, subject_en="English only")
    french = _feed(client, "?lang=fr")
    assert french.get(XML_LANG) == "fr"
    assert "Groupe mixte d'experts" in french.findtext(f"{ATOM}title")
    entries = {
        entry.findtext(f"{ATOM}title"): entry.get(XML_LANG)
        for entry in french.findall(f"{ATOM}entry")
    }
    assert entries == {"Atelier": "fr", "English only": "en"}
    russian = _feed(client, "?lang=ru")
    assert "Совместной группы экспертов" in russian.findtext(f"{ATOM}title")


def test_empty_feed_is_still_valid_atom(client):
    feed = _feed(client)
    assert feed.findtext(f"{ATOM}updated")
    assert feed.findall(f"{ATOM}entry") == []


def test_a_single_line_break_is_kept_on_the_archive_page(app, client):
    announcement_id = _sent(app, body_en="Kind regards,\nThe secretariat")
    page = client.get(f"/announcements/{announcement_id}?lang=en").get_data(as_text=True)
    assert "Kind regards,<br>" in page
    assert "The secretariat" in page.split("Kind regards,<br>", 1)[1]
