"""Sign-up confirmations and announcements reach the next hop through Debian's Postfix intact,
over STARTTLS or implicit TLS with a login, and their links work when they come back."""

import re
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from jeg_contacts.mailer import render_email
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import csrf_token, html_body, post_signup, text_body
from tests.peers.postfix import PostfixRelay
from tests.postfix.conftest import (
    ANNOUNCEMENT,
    READERS,
    announce,
    app_through,
    delivery_statuses,
    unsubscribe_url,
)

CONFIRM_SUBJECT = "Please confirm your subscription to JEG news"


def passed_through_postfix(message: EmailMessage) -> bool:
    return any("(Postfix)" in str(line) for line in message.get_all("Received", []))


def as_written(text: str) -> str:
    """A text part without the wire's line ends (CRLF) and the final one."""
    return text.replace("\r\n", "\n").rstrip("\n")


def translated(app: Flask, language: str, text: str) -> str:
    from flask_babel import force_locale, gettext

    with app.test_request_context(), force_locale(language):
        return gettext(text)


@pytest.mark.parametrize(
    ("language", "security"),
    [("en", "starttls"), ("fr", "starttls"), ("ru", "starttls"), ("ru", "tls")],
)
def test_signup_confirmation_arrives_through_postfix_intact(
    postfix: PostfixRelay, tmp_path, monkeypatch, language: str, security: str
) -> None:
    app = app_through(postfix, tmp_path, monkeypatch, security)
    client = app.test_client()

    post_signup(client, app, language=language, email="zoe.mueller@example.org")

    [message] = postfix.wait_for(1)
    assert passed_through_postfix(message)
    # (The envelope sender is left alone: bounce handling may give each message its own.)
    [(_sender, recipients)] = postfix.capture.recorder.envelopes
    assert recipients == ["zoe.mueller@example.org"]
    assert str(message["From"]) == "JEG secretariat <jeg@unece.test>"
    assert str(message["To"]) == "Zoë Müller <zoe.mueller@example.org>"
    assert str(message["Subject"]) == translated(app, language, CONFIRM_SUBJECT)
    confirm_url = re.search(r"http://jeg\.test/confirm/\S+", text_body(message)).group(0)
    with app.test_request_context():
        text, html = render_email(
            "confirm", language, name="Zoë Müller", confirm_url=confirm_url, days=7
        )
    assert as_written(text_body(message)) == as_written(text)
    assert as_written(html_body(message)) == as_written(html)

    # The link from the received message confirms the subscription.
    path = confirm_url.removeprefix("http://jeg.test")
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code in (200, 302)
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        assert contact.status is ContactStatus.ACTIVE
        assert contact.language == language


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_announcement_arrives_through_postfix_intact_and_unsubscribes_in_one_click(
    postfix: PostfixRelay, tmp_path, monkeypatch, security: str
) -> None:
    app = app_through(postfix, tmp_path, monkeypatch, security)
    announcement_id = announce(app)

    outcome = DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()

    assert outcome.sent == 3
    assert delivery_statuses(app, announcement_id) == ["sent"] * 3
    messages = {str(m["To"].addresses[0].addr_spec): m for m in postfix.wait_for(3)}
    assert sorted(messages) == sorted(address for address, _name in READERS.values())
    for language, (address, given_name) in READERS.items():
        message = messages[address]
        assert passed_through_postfix(message)
        assert str(message["From"]) == "JEG secretariat <jeg@unece.test>"
        assert str(message["Subject"]) == getattr(ANNOUNCEMENT, f"subject_{language}")
        body = getattr(ANNOUNCEMENT, f"body_{language}")
        greeting, paragraph = body.replace("{{ given_name }}", given_name).split("\n\n")
        for part in (text_body(message), html_body(message)):
            assert greeting in part
            assert paragraph in part
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe_url(message).startswith("http://jeg.test/unsubscribe/")

    # A mail client's one-click unsubscribe (RFC 8058): a POST, without cookies, to the URL in
    # the header of the message as it arrived.
    response = app.test_client(use_cookies=False).post(
        unsubscribe_url(messages["olga@example.ru"]).removeprefix("http://jeg.test"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    with app.app_context():
        statuses = dict(db.session.execute(sa.select(Contact.email, Contact.status)).all())
    assert statuses == {
        "zoe@example.org": ContactStatus.ACTIVE,
        "elodie@example.fr": ContactStatus.ACTIVE,
        "olga@example.ru": ContactStatus.UNSUBSCRIBED,
    }
