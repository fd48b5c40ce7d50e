"""A relay that refuses our login, or whose TLS fails, pauses the send: one login attempt,
no recipient failed, the reason shown to staff and to `flask doctor`, and a resume sends
every message once. Proven against aiosmtpd requiring AUTH over STARTTLS."""

import html
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask

from jeg_contacts.extensions import db
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus, Delivery
from jeg_contacts.mailing.relay import sends_paused_by_relay
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import RecordingHandler, free_port, make_app, staff_client
from tests.mailing.conftest import add_contacts
from tests.mailing.ui import post
from tests.security.test_configuration import PrivateCa, private_ca  # noqa: F401

RIGHT_PASSWORD = b"right password"


@dataclass
class Logins:
    """aiosmtpd authenticator accepting one password, counting every attempt."""

    attempts: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        with self.lock:
            self.attempts.append(auth_data.password)
        # handled=False: aiosmtpd itself answers a refusal (535).
        return AuthResult(success=auth_data.password == RIGHT_PASSWORD, handled=False)


@dataclass
class AuthRelay:
    handler: RecordingHandler
    logins: Logins
    port: int


@pytest.fixture
def auth_relay(private_ca: PrivateCa) -> Iterator[AuthRelay]:  # noqa: F811
    """A relay in the port 587 style: STARTTLS before anything, then AUTH, then mail."""
    relay = AuthRelay(RecordingHandler(), Logins(), free_port())
    controller = Controller(
        relay.handler,
        hostname="127.0.0.1",
        port=relay.port,
        authenticator=relay.logins,
        tls_context=private_ca.server_context(),
        require_starttls=True,
        auth_required=True,
    )
    controller.start()
    yield relay
    controller.stop()


def relay_app(tmp_path: Path, relay: AuthRelay, ca: PrivateCa | None, password: str) -> Flask:
    return make_app(
        tmp_path,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=relay.port,
        SMTP_SECURITY="starttls",
        SMTP_USERNAME="jeg",
        SMTP_PASSWORD=password,
        SMTP_CA_FILE=str(ca.ca_file) if ca else "",
        SMTP_TIMEOUT=5,
    )


def announce(app: Flask, count: int) -> int:
    add_contacts(app, [f"person{n}@example.org" for n in range(count)])
    with app.app_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en="Dear {{ given_name }}")
        )
        mailing.start_sending(announcement)
        db.session.commit()
        return announcement.id


def deliveries(app: Flask, announcement_id: int) -> list[tuple[str, int]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.status, Delivery.attempts).where(
                Delivery.announcement_id == announcement_id
            )
        ).all()
        return [(status.value, attempts) for status, attempts in rows]


def run_worker(app: Flask, concurrency: int = 1) -> None:
    DeliveryWorker(app, concurrency=concurrency, until_idle=True, poll_seconds=0.05).run()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_refused_login_pauses_the_send_after_one_attempt_and_resume_sends_all(
    tmp_path: Path,
    auth_relay: AuthRelay,
    private_ca: PrivateCa,  # noqa: F811
    concurrency: int,
) -> None:
    app = relay_app(tmp_path, auth_relay, private_ca, "wrong password")
    announcement_id = announce(app, 24)

    run_worker(app, concurrency)

    assert auth_relay.logins.attempts == [b"wrong password"]
    assert auth_relay.handler.messages == []
    # Nobody failed, nobody used an attempt: every row waits in the queue.
    assert deliveries(app, announcement_id) == [("queued", 0)] * 24
    with app.app_context():
        announcement = db.session.get(Announcement, announcement_id)
        assert announcement.status is AnnouncementStatus.PAUSED
        assert announcement.paused_reason == "login_refused"
        [paused] = sends_paused_by_relay()
    assert paused.announcement_id == announcement_id
    assert paused.reason == "login_refused"
    assert "535" in paused.detail
    assert "refused this application's login" in paused.explanation
    assert paused.since is not None

    editor = staff_client(app, "editor")
    page = html.unescape(editor.get(f"/admin/announcements/{announcement_id}").get_data(True))
    assert "The mail relay refused this application's login" in page
    assert "no recipient was marked failed" in page
    assert "535" in page

    # The operator fixes the password (and restarts the worker); staff resume.
    app.config["SMTP_PASSWORD"] = RIGHT_PASSWORD.decode()
    assert post(editor, f"/admin/announcements/{announcement_id}/resume").status_code == 302
    run_worker(app, concurrency)

    received = sorted(to for _sender, tos in auth_relay.handler.envelopes for to in tos)
    assert received == sorted(f"person{n}@example.org" for n in range(24))
    assert deliveries(app, announcement_id) == [("sent", 1)] * 24
    assert auth_relay.logins.attempts.count(RIGHT_PASSWORD) <= concurrency
    with app.app_context():
        assert sends_paused_by_relay() == []
        assert db.session.get(Announcement, announcement_id).paused_reason is None


def test_an_untrusted_relay_certificate_pauses_the_send_without_a_login(
    tmp_path: Path, auth_relay: AuthRelay
) -> None:
    app = relay_app(tmp_path, auth_relay, None, RIGHT_PASSWORD.decode())  # system CAs only
    announcement_id = announce(app, 3)

    run_worker(app)

    assert auth_relay.logins.attempts == []
    assert deliveries(app, announcement_id) == [("queued", 0)] * 3
    with app.app_context():
        [paused] = sends_paused_by_relay()
    assert paused.reason == "tls_failed"
    assert "CERTIFICATE_VERIFY_FAILED" in paused.detail


def test_the_relay_explanation_is_in_french_and_russian(
    tmp_path: Path,
    auth_relay: AuthRelay,
    private_ca: PrivateCa,  # noqa: F811
) -> None:
    app = relay_app(tmp_path, auth_relay, private_ca, "wrong password")
    announce(app, 1)
    run_worker(app)

    with app.app_context():
        [french] = sends_paused_by_relay("fr")
        [russian] = sends_paused_by_relay("ru")
    assert "relais" in french.explanation
    assert "SMTP_PASSWORD" in french.explanation
    assert "ретранслятор" in russian.explanation
