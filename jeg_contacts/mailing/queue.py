"""The delivery queue in the database: workers and their leases, claims, reclaim, outcomes.

A delivery row is `queued` until a worker claims it (`sending`, with the worker's id) and
`sent`, `failed` or `skipped` once its outcome is recorded, or `queued` again for a retry.
Workers register in the `workers` table and keep a heartbeat; rows claimed by a worker
known to be dead, or whose heartbeat is older than WORKER_LEASE_SECONDS, go back to the
queue (`reclaim`)."""

import contextlib
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    Worker,
)
from jeg_contacts.mailing.services import retry_delay


@dataclass
class Outcome:
    """What one worker recorded, counted across its sender threads."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def _is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _due() -> sa.ColumnElement[bool]:
    sending = sa.select(Announcement.id).where(Announcement.status == AnnouncementStatus.SENDING)
    return sa.and_(
        Delivery.status == DeliveryStatus.QUEUED,
        Delivery.next_attempt_at <= utcnow(),
        Delivery.announcement_id.in_(sending),
    )


class DeliveryQueue:
    """The queue as one worker process uses it: under its own worker id, from its supervisor
    (the ORM session) and from its sender threads (each on its own connection)."""

    def __init__(self, app: Flask) -> None:
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        # SQLite has one writer at a time and a busy connection waits by sleeping (1 ms and
        # up), so this process's own writers take turns on a lock instead, which hands over
        # in microseconds. PostgreSQL locks rows, not the database: no need there.
        self.writing: contextlib.AbstractContextManager = (
            threading.Lock()
            if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
            else contextlib.nullcontext()
        )

    # -- the worker's registration and lease (supervisor, ORM session) ----------------------

    def register(self) -> None:
        hostname, pid, _suffix = self.worker_id.split(":")
        db.session.add(Worker(id=self.worker_id, hostname=hostname, pid=int(pid)))

    def heartbeat(self) -> None:
        db.session.execute(
            sa.update(Worker).where(Worker.id == self.worker_id).values(heartbeat_at=utcnow())
        )

    def unregister(self) -> None:
        db.session.execute(sa.delete(Worker).where(Worker.id == self.worker_id))

    def reclaim(self, *, at_start: bool) -> int:
        """Put rows claimed by dead workers back in the queue."""
        lease = timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
        stale_before = utcnow() - lease
        others = db.session.scalars(sa.select(Worker).where(Worker.id != self.worker_id)).all()
        dead = {w.id for w in others if w.heartbeat_at < stale_before}
        if at_start:
            hostname = socket.gethostname()
            dead |= {
                w.id
                for w in others
                if not _is_postgres() or (w.hostname == hostname and not _process_alive(w.pid))
            }
        live = {w.id for w in others} - dead
        orphaned = sa.and_(
            Delivery.status == DeliveryStatus.SENDING,
            Delivery.worker_id != self.worker_id,
            sa.or_(Delivery.worker_id.is_(None), Delivery.worker_id.not_in(live or {""})),
        )
        reclaimed = db.session.execute(
            sa.update(Delivery)
            .where(orphaned)
            .values(status=DeliveryStatus.QUEUED, worker_id=None, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if dead:
            db.session.execute(sa.delete(Worker).where(Worker.id.in_(dead)))
        return reclaimed

    def anything_due(self) -> bool:
        """Whether there is work: due deliveries, or rows this worker still holds."""
        due = db.session.scalar(sa.select(sa.exists().where(_due())))
        mine = db.session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.status == DeliveryStatus.SENDING,
                    Delivery.worker_id == self.worker_id,
                )
            )
        )
        return bool(due or mine)

    # -- claims (sender threads) ------------------------------------------------------------

    def claim(self, connection: sa.Connection, batch_size: int) -> list[int]:
        """Mark up to batch_size due deliveries `sending` for this worker, in one commit; their
        ids in order."""
        candidates = (
            sa.select(Delivery.id)
            .where(_due())
            # The claim index's own order: no sort of the whole queue for every batch.
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(batch_size)
        )
        if _is_postgres():
            candidates = candidates.with_for_update(skip_locked=True)
        # Plain Core statements on the sender's own connection, without the ORM session's
        # per-statement overhead.
        with self.writing:
            claimed = connection.execute(
                sa.update(Delivery)
                .where(Delivery.id.in_(candidates.scalar_subquery()))
                .values(
                    status=DeliveryStatus.SENDING,
                    worker_id=self.worker_id,
                    attempts=Delivery.attempts + 1,
                )
                .returning(Delivery.id)
            )
            ids = sorted(claimed.scalars().all())
            connection.commit()
        return ids

    def release(self, delivery_ids: list[int]) -> None:
        """Hand claimed but unsent deliveries back (pause, cancel or shutdown)."""
        with self.writing:
            db.session.execute(
                sa.update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids),
                    Delivery.worker_id == self.worker_id,
                    Delivery.status == DeliveryStatus.SENDING,
                )
                .values(
                    status=DeliveryStatus.QUEUED, worker_id=None, attempts=Delivery.attempts - 1
                )
                .execution_options(synchronize_session=False)
            )
            db.session.commit()

    def outcome_log(self, connection: sa.Connection, outcome: Outcome) -> "OutcomeLog":
        """Where one sender thread notes its outcomes, committed on `connection`."""
        return OutcomeLog(self, connection, outcome)


class OutcomeLog:
    """One sender thread's outcomes: noted as they happen, committed by `flush` (at the latest
    before that thread's next message goes out, which keeps the duplicate bound at one)."""

    def __init__(self, queue: DeliveryQueue, connection: sa.Connection, outcome: Outcome) -> None:
        self._queue = queue
        self._connection = connection
        self._outcome = outcome
        self._unrecorded: list[dict[str, object]] = []
        self._max_attempts = current_app.config["DELIVERY_MAX_ATTEMPTS"]

    def sent(self, delivery_id: int, reply: str, message_id: str) -> None:
        self._note(delivery_id, DeliveryStatus.SENT, reply, message_id=message_id)
        self._outcome.add("sent")

    def failed(self, delivery_id: int, reply: str) -> None:
        self._note(delivery_id, DeliveryStatus.FAILED, reply)
        self._outcome.add("failed")

    def skipped(self, delivery_id: int, reason: str) -> None:
        self._note(delivery_id, DeliveryStatus.SKIPPED, reason)
        self._outcome.add("skipped")

    def retry(self, delivery_id: int, attempts: int, reply: str) -> None:
        """Queue the delivery again after a backoff, or fail it after its last attempt."""
        if attempts >= self._max_attempts:
            self.failed(delivery_id, f"gave up after {attempts}: {reply}")
            return
        retry_at = utcnow() + retry_delay(attempts)
        self._note(delivery_id, DeliveryStatus.QUEUED, reply, next_attempt_at=retry_at)
        self._outcome.add("retried")

    def _note(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        reply: str,
        *,
        message_id: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        self._unrecorded.append(
            {
                "delivery_id": delivery_id,
                "worker": self._queue.worker_id,
                "status": status,
                "reply": reply[:500],
                "message_id": message_id,
                "sent_at": utcnow() if status is DeliveryStatus.SENT else None,
                "next_attempt_at": next_attempt_at,
            }
        )

    def flush(self) -> None:
        """Commit the noted outcomes; only while this worker still holds their rows."""
        if self._unrecorded:
            with self._queue.writing:
                self._connection.execute(_RECORD_OUTCOME, self._unrecorded)
                self._connection.commit()
            self._unrecorded.clear()


# Built once: composing a statement costs more than executing it at a few thousand per second.
_RECORD_OUTCOME = (
    sa.update(Delivery)
    .where(Delivery.id == sa.bindparam("delivery_id"), Delivery.worker_id == sa.bindparam("worker"))
    .values(
        status=sa.bindparam("status", type_=Delivery.status.type),
        last_reply=sa.bindparam("reply"),
        worker_id=None,
        message_id=sa.func.coalesce(
            sa.bindparam("message_id", type_=sa.String), Delivery.message_id
        ),
        sent_at=sa.bindparam("sent_at", type_=Delivery.sent_at.type),
        next_attempt_at=sa.func.coalesce(
            sa.bindparam("next_attempt_at", type_=Delivery.next_attempt_at.type),
            Delivery.next_attempt_at,
        ),
    )
)


# -- announcements the queue serves (supervisor) ---------------------------------------------


def complete_finished() -> None:
    """Mark `sent` every announcement being sent that has no queued or claimed row left."""
    pending = (
        sa.select(Delivery.id)
        .where(
            Delivery.announcement_id == Announcement.id,
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING]),
        )
        .exists()
    )
    db.session.execute(
        sa.update(Announcement)
        .where(Announcement.status == AnnouncementStatus.SENDING, ~pending)
        .values(status=AnnouncementStatus.SENT, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def announcement_status(announcement_id: int) -> AnnouncementStatus | None:
    """The announcement's status now (ending the read transaction: nothing is held)."""
    status = db.session.scalar(
        sa.select(Announcement.status).where(Announcement.id == announcement_id)
    )
    db.session.rollback()
    return status


def counts_while_sending() -> dict[int, dict[str, int]]:
    """Each announcement being sent: its deliveries counted by status."""
    sending = db.session.scalars(
        sa.select(Announcement.id).where(Announcement.status == AnnouncementStatus.SENDING)
    ).all()
    return {
        announcement_id: dict(
            db.session.execute(
                sa.select(Delivery.status, sa.func.count())
                .where(Delivery.announcement_id == announcement_id)
                .group_by(Delivery.status)
            ).all()
        )
        for announcement_id in sending
    }


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
