"""The relay's limits, as the worker honours them: connections reused and ended with QUIT,
at most SMTP_MAX_PER_CONNECTION messages on one connection, and `worker --rate`."""

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from jeg_contacts.extensions import db
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import free_port, make_app
from tests.mailing.conftest import add_contacts


class LimitsHandler:
    """Notes, per SMTP connection, its messages and whether it ended with QUIT, and when
    each MAIL FROM arrived (the server's clock, not the sender's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.per_connection: Counter[int] = Counter()
        self.connections: set[int] = set()
        self.quits = 0
        self.mail_times: list[float] = []
        self.recipients: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections.add(id(session))
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.mail_times.append(time.monotonic())
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.per_connection[id(session)] += 1
            self.recipients.extend(envelope.rcpt_tos)
        return "250 2.0.0 queued"

    async def handle_QUIT(self, server, session, envelope):
        with self.lock:
            self.quits += 1
        return "221 Bye"


@pytest.fixture
def limits_relay() -> Iterator[tuple[LimitsHandler, int]]:
    handler = LimitsHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def announce(app: Flask, count: int) -> list[str]:
    emails = [f"person{n}@example.org" for n in range(count)]
    add_contacts(app, emails)
    with app.app_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en="Dear {{ given_name }}")
        )
        mailing.start_sending(announcement)
        db.session.commit()
    return emails


def relay_app(tmp_path: Path, port: int, **settings: object) -> Flask:
    return make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=5, **settings)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_worker_reuses_connections_up_to_the_limit_and_ends_each_with_quit(
    tmp_path: Path, limits_relay: tuple[LimitsHandler, int], concurrency: int
) -> None:
    handler, port = limits_relay
    app = relay_app(tmp_path, port, SMTP_MAX_PER_CONNECTION=4)
    emails = announce(app, 20)

    DeliveryWorker(app, concurrency=concurrency, until_idle=True, poll_seconds=0.05).run()

    assert sorted(handler.recipients) == sorted(emails)
    assert max(handler.per_connection.values()) <= 4
    # Reused: 20 messages at most 4 a connection take 5 connections (one more per extra
    # sender thread at most, for its last part-filled one), not 20.
    assert len(handler.connections) <= 5 + (concurrency - 1)
    assert handler.quits == len(handler.connections)


def test_worker_rate_is_honoured_as_the_relay_sees_it(
    tmp_path: Path, limits_relay: tuple[LimitsHandler, int]
) -> None:
    handler, port = limits_relay
    app = relay_app(tmp_path, port)
    emails = announce(app, 12)

    result = app.test_cli_runner().invoke(
        args=["worker", "--rate", "10", "--until-idle", "--quiet", "--concurrency", "3"]
    )

    assert result.exit_code == 0, result.output
    assert sorted(handler.recipients) == sorted(emails)
    # The limiter spaces the messages' turns at least 1/rate apart, so the server sees the
    # 2nd to 12th MAIL FROM over at least 10 intervals of 0.1 s, whatever the machine's
    # speed; the first is left out (its connection set-up delays it), and 0.3 s allowed for
    # a late 2nd. Without --rate the same run takes a few hundredths of a second here.
    times = sorted(handler.mail_times)
    assert times[-1] - times[1] >= 10 * 0.1 - 0.3
