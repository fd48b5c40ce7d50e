"""The delivery queue: claims, releases, outcomes held by their worker, and reclaim."""

from datetime import timedelta

import sqlalchemy as sa

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import services, tracking
from jeg_contacts.mailing.models import Announcement, Delivery, DeliveryStatus
from jeg_contacts.mailing.queue import DeliveryQueue, Outcome
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.mailing.conftest import add_contacts
from tests.mailing.test_worker import _announce, _deliveries, _run


def _statuses(app) -> dict[int, tuple[str, str | None, int]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.id, Delivery.status, Delivery.worker_id, Delivery.attempts)
        ).all()
        return {id_: (status.value, worker, attempts) for id_, status, worker, attempts in rows}


def test_a_claim_takes_due_deliveries_of_announcements_being_sent_in_batches(mail_app):
    add_contacts(mail_app, [f"person{n}@example.org" for n in range(5)])
    sending = _announce(mail_app)
    paused = _announce(mail_app)
    with mail_app.app_context():
        services.pause(db.session.get(Announcement, paused))
        later = db.session.scalars(
            sa.select(Delivery.id).where(Delivery.announcement_id == sending).order_by(Delivery.id)
        ).all()[-1]
        db.session.get(Delivery, later).next_attempt_at = utcnow() + timedelta(hours=1)
        db.session.commit()
        queue = DeliveryQueue(mail_app)
        with db.engine.connect() as connection:
            first = queue.claim(connection, 3)
            second = queue.claim(connection, 3)
            third = queue.claim(connection, 3)

    statuses = _statuses(mail_app)
    assert len(first) == 3 and len(second) == 1 and third == []
    assert later not in first + second
    for delivery_id in first + second:
        assert statuses[delivery_id] == ("sending", queue.worker_id, 1)
    assert statuses[later] == ("queued", None, 0)
    with mail_app.app_context():
        assert tracking.status_counts(paused)["queued"] == 5


def test_released_deliveries_go_back_without_counting_an_attempt(mail_app):
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    _announce(mail_app)
    with mail_app.app_context():
        queue = DeliveryQueue(mail_app)
        with db.engine.connect() as connection:
            claimed = queue.claim(connection, 10)
        queue.release(claimed)

    assert set(_statuses(mail_app).values()) == {("queued", None, 0)}


def test_an_outcome_is_not_recorded_once_the_row_was_taken_back(mail_app):
    """A worker presumed dead whose rows were reclaimed must not overwrite what another
    worker does with them."""
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    _announce(mail_app)
    with mail_app.app_context():
        queue = DeliveryQueue(mail_app)
        with db.engine.connect() as connection:
            kept, taken_back = queue.claim(connection, 10)
            db.session.execute(
                sa.update(Delivery)
                .where(Delivery.id == taken_back)
                .values(status=DeliveryStatus.QUEUED, worker_id=None)
            )
            db.session.commit()
            outcome = Outcome()
            log = queue.outcome_log(connection, outcome)
            log.sent(kept, "250 OK", "<1@unece.test>")
            log.sent(taken_back, "250 OK", "<2@unece.test>")
            log.flush()

    statuses = _statuses(mail_app)
    assert statuses[kept][:2] == ("sent", None)
    assert statuses[taken_back][:2] == ("queued", None)


def test_a_temporary_failure_is_retried_until_the_last_attempt(mail_app):
    add_contacts(mail_app, ["a@example.org"])
    _announce(mail_app)
    with mail_app.app_context():
        queue = DeliveryQueue(mail_app)
        outcome = Outcome()
        with db.engine.connect() as connection:
            log = queue.outcome_log(connection, outcome)
            for attempt in range(1, 5):  # DELIVERY_MAX_ATTEMPTS is 4
                [delivery_id] = queue.claim(connection, 10)
                log.retry(delivery_id, attempt, "451 4.3.0 try again later")
                log.flush()

    assert (outcome.retried, outcome.failed) == (3, 1)
    [(status, _worker, attempts)] = _statuses(mail_app).values()
    assert (status, attempts) == ("failed", 4)


def test_rows_left_sending_by_a_dead_worker_are_reclaimed_at_start(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    announcement_id = _announce(mail_app)
    with mail_app.app_context():
        db.session.execute(
            sa.update(Delivery).values(status=DeliveryStatus.SENDING, worker_id="ghost:1:dead")
        )
        db.session.commit()
    _run(mail_app)
    assert handler.recipients() == {"a@example.org": 1, "b@example.org": 1}
    assert {s for s, _ in _deliveries(mail_app, announcement_id).values()} == {"sent"}


def test_rows_of_a_worker_whose_heartbeat_stops_are_taken_back_within_the_lease(
    tmp_path, flaky_smtp
):
    import threading
    import time

    from jeg_contacts.extensions import utcnow
    from jeg_contacts.mailing.models import Worker
    from tests.conftest import make_app

    handler, port = flaky_smtp
    app = make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, WORKER_LEASE_SECONDS=2)
    add_contacts(app, ["a@example.org", "b@example.org"])
    _announce(app)
    with app.app_context():
        # Another host's worker claimed everything, heartbeat fresh, then went silent.
        db.session.add(Worker(id="elsewhere:1:gone", hostname="elsewhere", pid=1))
        db.session.execute(
            sa.update(Delivery).values(status=DeliveryStatus.SENDING, worker_id="elsewhere:1:gone")
        )
        db.session.commit()
        assert db.session.get(Worker, "elsewhere:1:gone").heartbeat_at <= utcnow()

    worker = DeliveryWorker(app, poll_seconds=0.05)
    thread = threading.Thread(target=worker.run)
    started = time.monotonic()
    thread.start()
    try:
        while len(handler.received) < 2 and time.monotonic() - started < 20:
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join()
    assert handler.recipients() == {"a@example.org": 1, "b@example.org": 1}
    assert time.monotonic() - started < 2 + 5  # the lease plus a few housekeeping rounds
