"""Killing workers: nothing lost, duplicates bounded; several workers never double-send."""

import os
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from jeg_contacts.mailing import tracking
from jeg_contacts.mailing.models import Delivery, DeliveryStatus
from tests.conftest import TEST_DATABASE_URL, csrf_token, signup_form
from tests.mailing.conftest import add_contacts
from tests.mailing.test_worker import _announce


def _wait(process: subprocess.Popen, timeout: float = 120) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode()
    return output.decode()


def _statuses(app, announcement_id) -> dict[str, int]:
    with app.app_context():
        return tracking.status_counts(announcement_id)


def test_worker_killed_mid_send_loses_nothing_and_duplicates_at_most_one_per_connection(
    mail_app, flaky_smtp, start_worker
):
    handler, _port = flaky_smtp
    handler.delay = 0.01  # slow enough that the kill lands mid-send
    addresses = [f"person{n}@example.org" for n in range(200)]
    add_contacts(mail_app, addresses)
    announcement_id = _announce(mail_app)
    concurrency = 3

    first = start_worker("--concurrency", str(concurrency), "--batch-size", "20")
    deadline = time.monotonic() + 60
    while len(handler.received) < 60:
        assert first.poll() is None, "the worker stopped by itself"
        assert time.monotonic() < deadline, "the worker sent nothing"
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    interrupted = _statuses(mail_app, announcement_id)
    assert interrupted["sending"] > 0, interrupted  # the kill left claimed rows behind
    assert interrupted["sent"] < 200

    _wait(start_worker("--concurrency", str(concurrency)))

    received = handler.recipients()
    assert set(received) == set(addresses), "every recipient got the message"
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= concurrency
    final = _statuses(mail_app, announcement_id)
    assert final["sent"] == 200 and final["sending"] == 0 and final["queued"] == 0


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="needs PostgreSQL: set TEST_DATABASE_URL (CI runs the suite again on PostgreSQL)",
)
def test_two_workers_on_postgresql_never_send_one_delivery_twice(
    mail_app, flaky_smtp, start_worker
):
    handler, _port = flaky_smtp
    handler.delay = 0.002
    addresses = [f"person{n}@example.org" for n in range(300)]
    add_contacts(mail_app, addresses)
    announcement_id = _announce(mail_app)

    workers = [start_worker("--concurrency", "2", "--batch-size", "10") for _ in range(2)]
    for worker in workers:
        _wait(worker)

    received = handler.recipients()
    assert received == {address: 1 for address in addresses}
    assert _statuses(mail_app, announcement_id)["sent"] == 300
    with mail_app.app_context():
        senders = db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Delivery.message_id))).where(
                Delivery.status == DeliveryStatus.SENT
            )
        )
    assert senders == 300


def test_web_requests_while_the_worker_sends_never_find_the_database_locked(
    mail_app, flaky_smtp, start_worker
):
    """SQLite has one writer at a time: sign-ups must wait their turn, never fail."""
    handler, _port = flaky_smtp
    handler.delay = 0.01
    add_contacts(mail_app, [f"person{n}@example.org" for n in range(400)])
    announcement_id = _announce(mail_app)
    worker = start_worker("--concurrency", "4", "--batch-size", "25")
    deadline = time.monotonic() + 60
    while not handler.received:
        assert time.monotonic() < deadline, "the worker sent nothing"
        time.sleep(0.01)

    client = mail_app.test_client()
    signups_during_the_send = 0
    while worker.poll() is None:
        visitor = {
            "REMOTE_ADDR": f"10.0.{signups_during_the_send // 200}.{signups_during_the_send % 200}"
        }
        data = signup_form(mail_app, email=f"new{signups_during_the_send}@example.org")
        data["csrf_token"] = csrf_token(client, "/signup")
        response = client.post("/signup", data=data, environ_base=visitor)
        assert response.status_code == 302, response.get_data(as_text=True)
        signups_during_the_send += 1
    _wait(worker)

    assert signups_during_the_send >= 10  # the two really overlapped
    assert _statuses(mail_app, announcement_id)["sent"] == 400
    with mail_app.app_context():
        created = db.session.scalar(
            sa.select(sa.func.count()).select_from(Contact).where(Contact.email.like("new%"))
        )
    assert created == signups_during_the_send
