"""The SMTP session every message goes through: reuse, the order of the caller's work, the
replies it turns into errors, and the header check before anything is sent."""

import smtplib
import threading
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from jeg_contacts.mailer import build_message
from jeg_contacts.mailer.messages import HeaderInjectionError, ReadyMessage, ready
from jeg_contacts.mailer.session import SmtpSession
from jeg_contacts.mailer.transports import MaildirOutbox, open_session
from tests.conftest import free_port, make_app, outbox_messages


class CountingHandler:
    """Accepts mail, counting connections; replies `data_reply` to the next DATA if set, and
    refuses recipients whose address starts with "refused"."""

    def __init__(self) -> None:
        self.connections = 0
        self.quits = 0
        self.envelopes: list[list[str]] = []
        self.mail_options: list[list[str]] = []
        self.contents: list[bytes] = []
        self.events: list[str] = []
        self.data_reply: str | None = None
        self.lock = threading.Lock()

    async def handle_QUIT(self, server, session, envelope):
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("refused"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.events.append("server has the message")
            reply, self.data_reply = self.data_reply, None
            if reply is None:
                self.envelopes.append(list(envelope.rcpt_tos))
                self.mail_options.append(list(envelope.mail_options))
                self.contents.append(envelope.original_content)
        return reply or "250 2.0.0 queued as 1234"


@pytest.fixture
def relay():
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def ascii_relay():
    """A relay that does not offer SMTPUTF8 (most still do not)."""
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def relay_app(tmp_path: Path, relay) -> Flask:
    _handler, port = relay
    return make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=5)


def message(
    to_email: str = "zoe.mueller@example.org",
    text: str = "Confirm: http://jeg.test/confirm/abc\n.\n..dots at line starts",
) -> ReadyMessage:
    return ready(
        build_message(
            to_email=to_email,
            to_name="Zoë Müller",
            subject="Please confirm",
            text=text,
            html="<p>Confirm</p>",
        )
    )


def test_one_session_sends_every_message_over_one_connection(relay_app: Flask, relay) -> None:
    handler, _port = relay
    with relay_app.app_context(), SmtpSession() as session:
        replies = [
            session.send([f"person{n}@example.org"], message(f"person{n}@example.org"))
            for n in range(3)
        ]

    assert replies == ["250 2.0.0 queued as 1234"] * 3
    assert handler.envelopes == [[f"person{n}@example.org"] for n in range(3)]
    assert handler.connections == 1


def test_the_caller_commits_before_the_data_and_builds_while_the_server_reads(
    relay_app: Flask, relay
) -> None:
    handler, _port = relay
    with relay_app.app_context(), SmtpSession() as session:
        session.send(
            ["zoe.mueller@example.org"],
            message(),
            before_data=lambda: handler.events.append("before data"),
            while_server_reads=lambda: handler.events.append("while the server reads"),
        )

    assert handler.events.index("before data") < handler.events.index("server has the message")
    assert "while the server reads" in handler.events


def test_a_421_ends_the_connection_and_the_next_message_opens_another(
    relay_app: Flask, relay
) -> None:
    handler, _port = relay
    handler.data_reply = "421 4.3.2 shutting down"
    with relay_app.app_context(), SmtpSession() as session:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            session.send(["first@example.org"], message("first@example.org"))
        assert refused.value.smtp_code == 421
        session.send(["second@example.org"], message("second@example.org"))

    assert handler.envelopes == [["second@example.org"]]
    assert handler.connections == 2


def test_a_permanent_refusal_keeps_the_connection(relay_app: Flask, relay) -> None:
    handler, _port = relay
    handler.data_reply = "554 5.6.0 content rejected"
    with relay_app.app_context(), SmtpSession() as session:
        with pytest.raises(smtplib.SMTPDataError):
            session.send(["first@example.org"], message("first@example.org"))
        session.send(["second@example.org"], message("second@example.org"))

    assert handler.connections == 1


def test_some_recipients_refused_the_others_get_it_all_refused_raises(
    relay_app: Flask, relay
) -> None:
    handler, _port = relay
    with relay_app.app_context(), SmtpSession() as session:
        session.send(["refused@example.org", "zoe.mueller@example.org"], message())
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            session.send(["refused@example.org"], message())

    assert handler.envelopes == [["zoe.mueller@example.org"]]
    assert refused.value.recipients["refused@example.org"][0] == 550


def test_lines_starting_with_a_dot_arrive_as_written(relay_app: Flask, relay) -> None:
    """The DATA payload is dot-stuffed once, when the message is made ready."""
    handler, _port = relay
    with relay_app.app_context(), open_session() as session:
        assert isinstance(session, SmtpSession)
        sent = message()
        session.send(["zoe.mueller@example.org"], sent)

    [content] = handler.contents
    assert content.replace(b"\r\n", b"\n") == sent.raw.replace(b"\r\n", b"\n")
    assert b"\n.\n..dots at line starts" in content.replace(b"\r\n", b"\n")


def test_a_message_with_a_header_line_nobody_set_is_never_made_ready() -> None:
    raw = b"To: zoe@example.org\r\nSubject: Hello\r\nBcc: evil@evil.example\r\n\r\nHi\r\n"

    with pytest.raises(HeaderInjectionError):
        ReadyMessage.checked(raw, ["To", "Subject"], "<1@unece.test>")


def test_without_a_relay_the_session_is_the_maildir_outbox(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    calls: list[str] = []
    with app.app_context(), open_session() as session:
        assert isinstance(session, MaildirOutbox)
        reply = session.send(
            ["zoe.mueller@example.org"],
            message(),
            before_data=lambda: calls.append("before data"),
            while_server_reads=lambda: calls.append("while the server reads"),
        )

    assert reply == "250 written to the outbox"
    assert calls == ["before data", "while the server reads"]
    [stored] = outbox_messages(app)
    assert stored["To"].addresses[0].addr_spec == "zoe.mueller@example.org"


def test_a_session_reuses_one_connection_and_ends_it_with_quit(relay_app: Flask, relay) -> None:
    handler, _port = relay
    with relay_app.app_context(), SmtpSession() as session:
        for n in range(5):
            session.send([f"person{n}@example.org"], message(f"person{n}@example.org"))

    assert len(handler.envelopes) == 5
    assert (handler.connections, handler.quits) == (1, 1)


@pytest.mark.parametrize(("limit", "connections"), [(2, 3), (5, 1), (0, 1)])
def test_smtp_max_per_connection_quits_and_reconnects_after_that_many_messages(
    tmp_path: Path, relay, limit: int, connections: int
) -> None:
    handler, port = relay
    app = make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_MAX_PER_CONNECTION=limit)
    with app.app_context(), SmtpSession() as session:
        for n in range(5):
            session.send([f"person{n}@example.org"], message(f"person{n}@example.org"))

    assert handler.envelopes == [[f"person{n}@example.org"] for n in range(5)]
    # Every connection ended politely, the last one by the end of the session.
    assert (handler.connections, handler.quits) == (connections, connections)


def test_8bit_text_is_declared_as_body_8bitmime_and_arrives_intact(relay_app: Flask, relay) -> None:
    handler, _port = relay
    with relay_app.app_context(), SmtpSession() as session:
        # Lines this short go as 8bit (longer ones as base64).
        russian = message(text="Уважаемые коллеги,\nсеминар по плотинам.")  # noqa: RUF001
        english = message(text="Dear colleagues, a workshop on dam safety.")
        assert russian.eight_bit and not english.eight_bit
        session.send(["zoe.mueller@example.org"], russian)
        session.send(["zoe.mueller@example.org"], english)

    assert handler.mail_options == [["BODY=8BITMIME"], []]
    assert handler.contents[0].replace(b"\r\n", b"\n") == russian.raw.replace(b"\r\n", b"\n")


def test_a_non_ascii_envelope_address_goes_with_smtputf8_when_the_relay_offers_it(
    relay_app: Flask, relay
) -> None:
    handler, _port = relay
    with relay_app.app_context(), SmtpSession() as session:
        session.send(["zoë@example.org"], message())

    assert handler.envelopes == [["zoë@example.org"]]
    assert handler.mail_options == [["SMTPUTF8"]]


def test_a_non_ascii_address_is_refused_clearly_by_a_relay_without_smtputf8(
    tmp_path: Path, ascii_relay
) -> None:
    handler, port = ascii_relay
    app = make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    with app.app_context(), SmtpSession() as session:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            session.send(["zoë@example.org"], message())
        # The same connection still serves everyone else.
        session.send(["zoe@example.org", "zoë@example.org"], message())

    code, reply = refused.value.recipients["zoë@example.org"]
    assert code == 553
    assert b"SMTPUTF8" in reply
    assert handler.envelopes == [["zoe@example.org"]]
    assert handler.connections == 1
