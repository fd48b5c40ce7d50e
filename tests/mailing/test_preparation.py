"""Preparing bulk messages: each recipient's message, with the header checks of all mail."""

import pytest
import sqlalchemy as sa

from jeg_contacts.extensions import db
from jeg_contacts.mailer.messages import HeaderInjectionError
from jeg_contacts.mailing import tracking
from jeg_contacts.mailing.models import Announcement, Delivery, DeliveryStatus
from jeg_contacts.mailing.rendering import LanguageVersion, MessageFactory, Recipient
from tests.mailing.conftest import add_contacts
from tests.mailing.test_worker import _announce, _deliveries, _run

INJECTION = "\r\nBcc: evil@evil.example"
ANNOUNCEMENT_HEADERS = {
    "from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type",
}  # fmt: skip


def test_a_line_break_in_a_name_or_subject_adds_no_header_to_bulk_mail(mail_app, flaky_smtp):
    """Names and subjects are stored by many paths (imports, old rows, the API): whatever they
    hold, the message carries the headers the worker set and goes to its one recipient."""
    handler, _port = flaky_smtp
    add_contacts(
        mail_app,
        ["zoe@example.org"],
        given_name="Zoë" + INJECTION,
        family_name="Müller\nBcc: evil@evil.example",
        organisation_name="Umweltbundesamt" + INJECTION,
    )
    announcement_id = _announce(mail_app)
    with mail_app.app_context():
        # As if written before subjects were checked: the send path must not trust it.
        db.session.get(Announcement, announcement_id).subject_en = "Workshop" + INJECTION
        db.session.commit()

    outcome = _run(mail_app)

    assert outcome.sent == 1
    assert dict(handler.attempts) == {"zoe@example.org": 1}
    [message] = handler.received
    assert {name.lower() for name in message} == ANNOUNCEMENT_HEADERS
    # The text stays, as text on the header's one line.
    assert [address.addr_spec for address in message["To"].addresses] == ["zoe@example.org"]
    assert str(message["Subject"]) == "Workshop Bcc: evil@evil.example"
    assert _deliveries(mail_app, announcement_id)["zoe@example.org"][0] == "sent"


@pytest.mark.parametrize("field", ["sender", "list_id"], ids=["from-header", "list-id-header"])
def test_a_bulk_message_whose_header_lines_differ_from_those_set_is_refused(field) -> None:
    """The check of every message (mailer's), not the cleaning before it, is the last word:
    a value that skipped cleaning makes the message unsendable."""
    values = {"sender": "jeg@unece.test", "list_id": "JEG <a.jeg.test>"}
    values[field] += INJECTION
    factory = MessageFactory(message_id_domain="unece.test", **values)
    version = LanguageVersion(language="en", subject="Workshop", text="Hello", html="<p>Hi</p>")
    recipient = Recipient(
        email="zoe@example.org",
        given_name="Zoë",
        family_name="Müller",
        organisation="",
        topics="",
        preferences_url="http://jeg.test/p",
        unsubscribe_url="http://jeg.test/u",
    )

    with pytest.raises(HeaderInjectionError):
        factory.build(version, recipient)


def test_a_message_that_cannot_be_built_is_recorded_failed_and_the_rest_go_out(
    mail_app, flaky_smtp
):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["fine@example.org", "broken address@example.org"])
    announcement_id = _announce(mail_app)

    outcome = _run(mail_app)

    assert (outcome.sent, outcome.failed) == (1, 1)
    assert dict(handler.attempts) == {"fine@example.org": 1}
    results = _deliveries(mail_app, announcement_id)
    status, reply = results["broken address@example.org"]
    assert status == "failed" and reply.startswith("message not built")
    with mail_app.app_context():
        assert tracking.status_counts(announcement_id)["failed"] == 1
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(Delivery.status == DeliveryStatus.SENT)
            )
            == 1
        )
