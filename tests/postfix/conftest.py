"""The app's mail through a real Postfix: its private instance (tests/peers/postfix.py)."""

# French and Russian text, typographic dashes and quotes: on purpose.
# ruff: noqa: RUF001

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts.extensions import db
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.models import Delivery
from tests.conftest import make_app
from tests.mailing.conftest import add_contacts
from tests.peers.postfix import PostfixRelay


def app_through(
    postfix: PostfixRelay,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    security: str = "starttls",
    password: str | None = None,
) -> Flask:
    """An app configured, as an operator would through the environment, to send through
    `postfix` with `security` ("starttls" or "tls") and a login."""
    for name, value in postfix.app_environment(security, password).items():
        monkeypatch.setenv(name, value)
    return make_app(tmp_path, BASE_URL="http://jeg.test")


# Written as staff write them: non-ASCII in every language (dashes and quotes included), and
# a Russian subject long enough to be folded over several encoded words.
ANNOUNCEMENT = drafts.AnnouncementDraft(
    subject_en="Workshop on tailings safety — Geneva, 14–15 May",
    body_en="Dear {{ given_name }},\n\nThe workshop on tailings safety takes place in Geneva.",
    subject_fr="Atelier sur la sécurité des installations de résidus miniers à Genève",
    body_fr="Chère {{ given_name }},\n\nL’atelier sur la sécurité a lieu à Genève, salle XVII.",
    subject_ru="Семинар по безопасности хвостохранилищ и промышленных аварий в Женеве, 14–15 мая",
    body_ru="Уважаемая {{ given_name }},\n\nСеминар по безопасности пройдёт в Женеве, зал XVII.",
)
READERS = {
    "en": ("zoe@example.org", "Zoë"),
    "fr": ("elodie@example.fr", "Élodie"),
    "ru": ("olga@example.ru", "Ольга"),
}


def announce(app: Flask) -> int:
    for language, (address, given_name) in READERS.items():
        add_contacts(app, [address], language=language, given_name=given_name)
    with app.app_context():
        announcement = drafts.save_draft(ANNOUNCEMENT)
        mailing.start_sending(announcement)
        db.session.commit()
        return announcement.id


def delivery_statuses(app: Flask, announcement_id: int) -> list[str]:
    with app.app_context():
        statuses = db.session.scalars(
            sa.select(Delivery.status).where(Delivery.announcement_id == announcement_id)
        )
        return sorted(status.value for status in statuses)


def unsubscribe_url(message: EmailMessage) -> str:
    """The one URL in the List-Unsubscribe header (a long one may be folded onto a line of its
    own, which leaves white space before it)."""
    match = re.fullmatch(r"\s*<([^<>\s]+)>\s*", str(message["List-Unsubscribe"]))
    assert match, f"List-Unsubscribe: {message['List-Unsubscribe']!r}"
    return match.group(1)
