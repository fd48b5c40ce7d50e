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
from tests.conftest import TEST_DATABASE_URL, csrf_token, signup_form, subprocess_environment
from tests.mailing.conftest import FLASK, ROOT, add_contacts
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


def test_sigterm_mid_send_lets_the_message_finish_and_a_restart_sends_each_exactly_once(
    mail_app, flaky_smtp, start_worker
):
    """systemd's stop: SIGTERM while the relay is still taking a message. The worker waits
    for the relay's reply, records it, gives its other claimed rows back and exits; the next
    worker sends the rest. No message is lost or doubled."""
    handler, port = flaky_smtp
    handler.delay = 0.3  # the relay takes its time over each message
    addresses = [f"person{n}@example.org" for n in range(12)]
    add_contacts(mail_app, addresses)
    announcement_id = _announce(mail_app)
    # The long-running worker, as its service runs it (not --until-idle).
    worker = subprocess.Popen(
        [FLASK, "--app", "wsgi", "worker", "--concurrency", "2", "--batch-size", "5"],
        cwd=ROOT,
        env=subprocess_environment(
            mail_app, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), DELIVERY_RETRY_BASE_SECONDS="0"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    in_flight: list[str] = []

    def stop_during_the_fourth(recipient: str) -> None:
        in_flight.append(recipient)
        if len(in_flight) == 4:
            os.kill(worker.pid, signal.SIGTERM)

    handler.on_data = stop_during_the_fourth
    try:
        output = _wait(worker, timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    handler.on_data = None

    assert "Worker finished" in output
    stopped = _statuses(mail_app, announcement_id)
    assert stopped.get("sending", 0) == 0, stopped  # claimed rows went back to the queue
    accepted = handler.recipients()
    assert in_flight[3] in accepted  # the message in flight at SIGTERM was finished
    assert stopped["sent"] == sum(accepted.values()) < len(addresses)  # each one recorded

    _wait(start_worker())

    assert handler.recipients() == {address: 1 for address in addresses}
    final = _statuses(mail_app, announcement_id)
    assert final["sent"] == len(addresses) and final.get("queued", 0) == 0
