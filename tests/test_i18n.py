"""English, French and Russian: pages, emails and complete catalogues."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from jeg_contacts.mailing.models import Announcement
from jeg_contacts.mailing.services import language_version
from tests.conftest import html_body, outbox_messages, post_signup, text_body

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "jeg_contacts" / "translations"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", ["Thèmes qui vous intéressent", "Allemagne", "Sécurité des pipelines", "Civilité"]),
        ("ru", ["Интересующие вас темы", "Германия", "Безопасность трубопроводов", "Подписаться"]),
        ("en", ["Topics you want to hear about", "Germany", "Pipeline safety", "Sign up"]),
    ],
)
def test_signup_page_is_translated(client, language, expected):
    page = client.get(f"/signup?lang={language}").get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    for text in expected:
        assert text in page


def test_accept_language_chooses_when_nothing_else_does(client):
    page = client.get("/signup", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru">' in page.get_data(as_text=True)
    page = client.get("/signup", headers={"Accept-Language": "de-DE,fr;q=0.8"})
    assert '<html lang="fr">' in page.get_data(as_text=True)


def test_lang_parameter_beats_accept_language_and_is_remembered(client):
    headers = {"Accept-Language": "ru"}
    assert '<html lang="fr">' in client.get("/?lang=fr", headers=headers).get_data(as_text=True)
    assert '<html lang="fr">' in client.get("/signup", headers=headers).get_data(as_text=True)


def test_validation_messages_are_translated(app, client):
    client.get("/signup?lang=fr")
    page = post_signup(client, app, consent="").get_data(as_text=True)
    assert "Cochez la case" in page
    page = post_signup(client, app, email="nope").get_data(as_text=True)
    assert "adresse électronique valide" in page


def test_emails_follow_the_contact_language_not_the_page(app, client):
    client.get("/signup?lang=en")
    post_signup(client, app, language="fr")
    [message] = outbox_messages(app)
    assert "Veuillez confirmer" in str(message["Subject"])
    assert "jours" in text_body(message)
    assert 'lang="fr"' in message.get_body(preferencelist=("html",)).get_content()


def _pairs(catalogue) -> dict:
    def plain(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    return {plain(m.id): plain(m.string) for m in catalogue if m.id}


def _catalogue(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po)


@pytest.mark.parametrize("language", ["fr", "ru"])
def test_catalogue_is_complete_and_compiled(language):
    catalogue = _catalogue(language)
    missing = [
        message.id
        for message in catalogue
        if message.id
        and (
            message.fuzzy
            or not all(message.string if isinstance(message.string, tuple) else [message.string])
        )
    ]
    assert missing == []
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo").open("rb") as mo:
        compiled = read_mo(mo)
    assert _pairs(compiled) == _pairs(catalogue), "stale messages.mo: make translations-compile"


def test_every_marked_string_is_in_the_catalogues(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("pybabel")),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as extracted:
        marked = {message.id for message in read_po(extracted) if message.id}
    for language in ("fr", "ru"):
        known = {message.id for message in _catalogue(language) if message.id}
        assert marked - known == set(), f"{language}: run make translations-extract"


# --- French typography: a no-break space before ":", ";", "?" and "!" ----------------------


def colons_without_a_no_break_space(text: str, marks: str = ":") -> list[str]:
    """Each of `marks` (outside tags, addresses and placeholders) that lacks the no-break space
    before it, in context.

    French sets a space before ":" (and ";", "?", "!"); a no-break one, so that the mark never
    starts a line."""
    words = re.sub(r"<[^>]*>|\w+://\S*|@@\w+@@|%\(\w+\)[sd]|\{\w+\}", " ", text)
    return [
        words[max(i - 20, 0) : i + 1]
        for i, char in enumerate(words)
        if char in marks and words[i - 1] not in "\u00a0\u202f"
    ]


def test_a_french_confirmation_email_has_a_no_break_space_before_colons(app, client):
    post_signup(client, app, language="fr")
    [message] = outbox_messages(app)
    assert "Veuillez confirmer" in str(message["Subject"])
    for part in (str(message["Subject"]), text_body(message), html_body(message)):
        assert colons_without_a_no_break_space(part) == []


def test_a_french_announcement_footer_has_a_no_break_space_before_colons(app):
    announcement = Announcement(
        subject_en="Workshop", body_en="Hello", subject_fr="Atelier", body_fr="Bonjour"
    )
    with app.test_request_context():
        french = language_version(announcement, "fr")
    assert "Modifier vos thèmes ou votre langue\u00a0: @@PREFERENCES_URL@@" in french.text
    assert "Se désabonner\u00a0: @@UNSUBSCRIBE_URL@@" in french.text
    assert colons_without_a_no_break_space(french.text) == []
    assert colons_without_a_no_break_space(french.html) == []


def test_every_french_string_of_an_email_has_a_no_break_space_before_colons():
    for message in _catalogue("fr"):
        if message.id and any(path.startswith("templates/email/") for path, _ in message.locations):
            forms = message.string if isinstance(message.string, tuple) else [message.string]
            for form in forms:
                assert colons_without_a_no_break_space(form) == [], message.id


def test_every_french_string_has_a_no_break_space_before_high_punctuation():
    for message in _catalogue("fr"):
        if message.id:
            forms = message.string if isinstance(message.string, tuple) else [message.string]
            for form in forms:
                assert colons_without_a_no_break_space(form, ":;?!") == [], message.id
