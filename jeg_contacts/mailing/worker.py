"""The delivery worker: drains the queue over reused SMTP connections, safely under crashes.

Crash safety: a delivery is marked `sending` (claimed by this worker) before its DATA goes
out, and `sent` after the server's 250 reply, in a commit made while the server handles the
next message's MAIL FROM and always before that message's DATA. A worker killed at any
moment therefore leaves at most one message per SMTP connection sent-but-not-recorded: after
a restart those few are sent again (the duplicate bound is the concurrency), every other
claimed row is simply queued again, and nothing is lost.

Claimed rows of a dead worker are reclaimed at start-up when it is known to be dead (SQLite,
where one worker runs, or the same host with its process gone) and otherwise once its
heartbeat is older than WORKER_LEASE_SECONDS."""

import contextlib
import functools
import math
import os
import re
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from jeg_contacts.audiences.services import audience_topic_ids
from jeg_contacts.contacts.links import manage_token_for
from jeg_contacts.contacts.models import Contact, ContactStatus, Organisation, Topic, subscriptions
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailer import external_url
from jeg_contacts.mailer.messages import MessageBuildError, sender_addr_spec
from jeg_contacts.mailer.transports import connect_smtp, deliver_raw
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    Worker,
)
from jeg_contacts.mailing.rendering import LanguageVersion, MessageFactory, Recipient
from jeg_contacts.mailing.services import (
    effective_criteria,
    language_version,
    list_id,
    retry_delay,
)

_TEMPORARY_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


class RateLimiter:
    """A token bucket shared by the sender threads; `rate` messages per second, or unlimited."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass
class Outcome:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    announcement_id: int
    attempts: int
    recipient: Recipient | None  # None: skip (no longer active)
    language: str


@dataclass(frozen=True, slots=True)
class _BuiltMessage:
    message_id: str
    raw: bytes
    wire: bytes  # the DATA payload: dot-stuffed and terminated, as smtplib's `data()` sends it

    @classmethod
    def of(cls, message_id: str, raw: bytes) -> "_BuiltMessage":
        wire = _LEADING_DOT.sub(b"..", raw)
        if not wire.endswith(b"\r\n"):
            wire += b"\r\n"
        return cls(message_id, raw, wire + b".\r\n")


_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class _Links:
    """Each recipient's preference and unsubscribe links. Routing builds each URL once; then
    only the token changes (werkzeug's URL building costs more than the rest of a message)."""

    preferences_template: tuple[str, str]
    unsubscribe_template: tuple[str, str]

    @classmethod
    def for_app(cls) -> "_Links":
        def template(endpoint: str) -> tuple[str, str]:
            head, _marker, tail = external_url(endpoint, token="TOKENSLOT").partition("TOKENSLOT")
            return head, tail

        return cls(template("signup.preferences"), template("signup.unsubscribe"))

    def preferences(self, token: str) -> str:
        head, tail = self.preferences_template
        return f"{head}{token}{tail}"

    def unsubscribe(self, token: str) -> str:
        head, tail = self.unsubscribe_template
        return f"{head}{token}{tail}"


def _is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


class DeliveryWorker:
    def __init__(
        self,
        app: Flask,
        *,
        concurrency: int = 1,
        rate: float | None = None,
        batch_size: int = 50,
        until_idle: bool = False,
        poll_seconds: float = 1.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.concurrency = max(1, concurrency)
        self.batch_size = batch_size
        self.until_idle = until_idle
        self.poll_seconds = poll_seconds
        self.progress = progress
        self.rate = RateLimiter(rate)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.outcome = Outcome()
        self._stop = threading.Event()
        self._idle = [False] * self.concurrency
        self._local = threading.local()  # each sender thread's own database connection
        self._versions: dict[tuple[int, str], LanguageVersion] = {}
        self._topic_filters: dict[int, set[int]] = {}
        self._cache_lock = threading.Lock()
        # SQLite has one writer at a time and a busy connection waits by sleeping (1 ms and
        # up), so this process's own writers take turns on a lock instead, which hands over
        # in microseconds. PostgreSQL locks rows, not the database: no need there.
        self._writing: contextlib.AbstractContextManager = (
            threading.Lock()
            if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
            else contextlib.nullcontext()
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        with self.app.app_context():
            self._links = _Links.for_app()
            self._register()
            self._reclaim(at_start=True)
            db.session.commit()
        threads = [
            threading.Thread(target=self._sender, args=(index,), name=f"sender-{index}")
            for index in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            self._supervise()
        finally:
            self._stop.set()
            for thread in threads:
                thread.join()
            with self.app.app_context():
                db.session.execute(sa.delete(Worker).where(Worker.id == self.id))
                db.session.commit()
        return self.outcome

    def stop(self) -> None:
        self._stop.set()

    def _register(self) -> None:
        hostname, pid, _suffix = self.id.split(":")
        db.session.add(Worker(id=self.id, hostname=hostname, pid=int(pid)))

    def _supervise(self) -> None:
        lease = self.app.config["WORKER_LEASE_SECONDS"]
        # time.monotonic() counts from an arbitrary point, on Linux the boot: a "last done"
        # of 0.0 would read as "just done" on a machine up for less than an interval. So
        # the first round does every periodic job.
        never = -math.inf
        last_heartbeat = last_reclaim = last_progress = never
        with self.app.app_context():
            while not self._stop.is_set():
                now = time.monotonic()
                with self._writing:
                    if now - last_heartbeat >= min(5.0, lease / 3):
                        db.session.execute(
                            sa.update(Worker)
                            .where(Worker.id == self.id)
                            .values(heartbeat_at=utcnow())
                        )
                        last_heartbeat = now
                    if now - last_reclaim >= min(10.0, lease / 3):
                        self._reclaim(at_start=False)
                        last_reclaim = now
                    self._complete_finished()
                    db.session.commit()
                if self.progress and now - last_progress >= 2.0:
                    self._report_progress()
                    last_progress = now
                if self.until_idle and all(self._idle) and not self._anything_due():
                    break
                self._stop.wait(min(self.poll_seconds, 0.5))
            with self._writing:
                self._complete_finished()
                db.session.commit()
            if self.progress:
                self._report_progress()

    # -- queue housekeeping ----------------------------------------------------------------

    def _reclaim(self, *, at_start: bool) -> int:
        """Put rows claimed by dead workers back in the queue."""
        lease = timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
        stale_before = utcnow() - lease
        others = db.session.scalars(sa.select(Worker).where(Worker.id != self.id)).all()
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
            Delivery.worker_id != self.id,
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

    def _complete_finished(self) -> None:
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

    def _due(self) -> sa.ColumnElement[bool]:
        sending = sa.select(Announcement.id).where(
            Announcement.status == AnnouncementStatus.SENDING
        )
        return sa.and_(
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.next_attempt_at <= utcnow(),
            Delivery.announcement_id.in_(sending),
        )

    def _anything_due(self) -> bool:
        due = db.session.scalar(sa.select(sa.exists().where(self._due())))
        mine = db.session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.status == DeliveryStatus.SENDING, Delivery.worker_id == self.id
                )
            )
        )
        return bool(due or mine)

    def _report_progress(self) -> None:
        sending = db.session.scalars(
            sa.select(Announcement.id).where(Announcement.status == AnnouncementStatus.SENDING)
        ).all()
        for announcement_id in sending:
            rows = dict(
                db.session.execute(
                    sa.select(Delivery.status, sa.func.count())
                    .where(Delivery.announcement_id == announcement_id)
                    .group_by(Delivery.status)
                ).all()
            )
            done = sum(rows.get(s, 0) for s in ("sent", "failed", "skipped"))
            total = sum(rows.values())
            self.progress(
                f"announcement {announcement_id}: {done}/{total} done "
                f"(sent {rows.get('sent', 0)}, failed {rows.get('failed', 0)}, "
                f"skipped {rows.get('skipped', 0)})"
            )
        o = self.outcome
        self.progress(
            f"worker: sent {o.sent}, failed {o.failed}, retried {o.retried}, skipped {o.skipped}"
        )

    # -- sending -----------------------------------------------------------------------------

    def _sender(self, index: int) -> None:
        with self.app.app_context(), db.engine.connect() as connection:
            if _is_postgres():
                # Outcome commits need not wait for the disk: a worker crash cannot undo them,
                # and a database server crash costs at most a few duplicate sends.
                connection.exec_driver_sql("SET synchronous_commit TO off")
                connection.commit()
            self._local.connection = connection
            self._local.status_checked = {}
            self._local.unrecorded = []
            factory = MessageFactory.for_sender(current_app.config["MAIL_FROM"], list_id())
            envelope_from = sender_addr_spec()
            smtp: smtplib.SMTP | None = None
            try:
                while not self._stop.is_set():
                    jobs = self._claim()
                    if not jobs:
                        self._idle[index] = True
                        self._stop.wait(self.poll_seconds)
                        continue
                    self._idle[index] = False
                    smtp = self._send_batch(jobs, smtp, factory, envelope_from)
            finally:
                self._flush_outcomes()
                if smtp is not None:
                    try:
                        smtp.quit()
                    except (smtplib.SMTPException, OSError):
                        smtp.close()

    def _claim(self) -> list[_Job]:
        """Mark up to batch_size due deliveries `sending` for this worker, in one commit."""
        candidates = (
            sa.select(Delivery.id)
            .where(self._due())
            # The claim index's own order: no sort of the whole queue for every batch.
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(self.batch_size)
        )
        if _is_postgres():
            candidates = candidates.with_for_update(skip_locked=True)
        # The claim and the reads of `_prepare` go through this thread's own connection: plain
        # Core statements, without the ORM session's per-statement overhead.
        connection = self._local.connection
        with self._writing:
            claimed = connection.execute(
                sa.update(Delivery)
                .where(Delivery.id.in_(candidates.scalar_subquery()))
                .values(
                    status=DeliveryStatus.SENDING,
                    worker_id=self.id,
                    attempts=Delivery.attempts + 1,
                )
                .returning(Delivery.id)
            )
            ids = sorted(claimed.scalars().all())
            connection.commit()
        return self._prepare(ids) if ids else []

    def _prepare(self, ids: list[int]) -> list[_Job]:
        """Everything needed to send the claimed deliveries, in two queries."""
        connection = self._local.connection
        rows = connection.execute(
            sa.select(
                Delivery.id,
                Delivery.announcement_id,
                Delivery.attempts,
                Contact.id,
                Contact.status,
                Contact.email,
                Contact.given_name,
                Contact.family_name,
                Contact.language,
                Contact.link_secret,
                Organisation.name,
            )
            .join(Contact, Contact.id == Delivery.contact_id)
            .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        ).all()
        contact_ids = [row[3] for row in rows]
        topics: dict[int, list[tuple[int, dict[str, str]]]] = {}
        for contact_id, topic_id, label_en, label_fr, label_ru in connection.execute(
            sa.select(
                subscriptions.c.contact_id, Topic.id, Topic.label_en, Topic.label_fr, Topic.label_ru
            )
            .join(Topic, Topic.id == subscriptions.c.topic_id)
            .where(subscriptions.c.contact_id.in_(contact_ids))
            .order_by(Topic.position, Topic.id)
        ):
            translations = {"en": label_en, "fr": label_fr, "ru": label_ru}
            topics.setdefault(contact_id, []).append((topic_id, translations))
        jobs = []
        for (
            delivery_id, announcement_id, attempts, contact_id, status, email, given, family,
            language, link_secret, organisation,
        ) in rows:  # fmt: skip
            recipient = None
            if ContactStatus(status) is ContactStatus.ACTIVE and email:
                version = self._version(announcement_id, language)
                wanted = self._topic_filter(announcement_id)
                labels = [
                    translations.get(version.language) or translations["en"]
                    for topic_id, translations in topics.get(contact_id, [])
                    if not wanted or topic_id in wanted
                ]
                token = manage_token_for(contact_id, link_secret)
                recipient = Recipient(
                    email=email,
                    given_name=given,
                    family_name=family,
                    organisation=organisation or "",
                    topics=", ".join(labels),
                    preferences_url=self._links.preferences(token),
                    unsubscribe_url=self._links.unsubscribe(token),
                )
            jobs.append(_Job(delivery_id, announcement_id, attempts, recipient, language))
        connection.rollback()  # end the read transaction; nothing was changed
        return jobs

    def _version(self, announcement_id: int, language: str) -> LanguageVersion:
        key = (announcement_id, language)
        with self._cache_lock:
            if key not in self._versions:
                announcement = db.session.get(Announcement, announcement_id)
                self._versions[key] = language_version(announcement, language)
            return self._versions[key]

    def _topic_filter(self, announcement_id: int) -> set[int]:
        with self._cache_lock:
            if announcement_id not in self._topic_filters:
                announcement = db.session.get(Announcement, announcement_id)
                self._topic_filters[announcement_id] = audience_topic_ids(
                    effective_criteria(announcement)
                )
            return self._topic_filters[announcement_id]

    def _still_sending(self, announcement_id: int) -> bool:
        """Whether the announcement is still being sent (looked up at most once a second, so
        a pause or cancel takes effect within a second without a query per message)."""
        checked = self._local.status_checked
        status, at = checked.get(announcement_id, (None, -math.inf))
        if time.monotonic() - at >= 1.0:
            status = db.session.scalar(
                sa.select(Announcement.status).where(Announcement.id == announcement_id)
            )
            db.session.rollback()
            checked[announcement_id] = (status, time.monotonic())
        return status is AnnouncementStatus.SENDING

    def _release(self, delivery_ids: list[int]) -> None:
        """Hand claimed but unsent deliveries back (pause, cancel or shutdown)."""
        with self._writing:
            db.session.execute(
                sa.update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids),
                    Delivery.worker_id == self.id,
                    Delivery.status == DeliveryStatus.SENDING,
                )
                .values(
                    status=DeliveryStatus.QUEUED, worker_id=None, attempts=Delivery.attempts - 1
                )
                .execution_options(synchronize_session=False)
            )
            db.session.commit()

    def _send_batch(
        self,
        jobs: list[_Job],
        smtp: smtplib.SMTP | None,
        factory: MessageFactory,
        envelope_from: str,
    ) -> smtplib.SMTP | None:
        """Send one claimed batch, building each message while the server reads the one
        before it (the server's think time would otherwise be idle time here)."""
        built: dict[int, _BuiltMessage | MessageBuildError] = {}

        def build(job: _Job | None) -> None:
            if job is not None and job.recipient is not None and job.delivery_id not in built:
                version = self._version(job.announcement_id, job.language)
                try:
                    message = _BuiltMessage.of(*factory.build(version, job.recipient))
                except MessageBuildError as error:
                    # Kept as the outcome: this one fails, the rest of the batch goes out.
                    built[job.delivery_id] = error
                else:
                    built[job.delivery_id] = message

        for position, job in enumerate(jobs):
            if self._stop.is_set() or not self._still_sending(job.announcement_id):
                self._flush_outcomes()
                self._release([j.delivery_id for j in jobs[position:]])
                break
            following = jobs[position + 1] if position + 1 < len(jobs) else None
            build(job)
            message = built.pop(job.delivery_id, None)
            if isinstance(message, MessageBuildError):
                self._record(job, DeliveryStatus.FAILED, f"message not built: {message}")
                self.outcome.add("failed")
                continue
            smtp = self._deliver(
                job, message, smtp, envelope_from, functools.partial(build, following)
            )
        self._flush_outcomes()
        return smtp

    def _deliver(
        self,
        job: _Job,
        message: _BuiltMessage | None,
        smtp: smtplib.SMTP | None,
        envelope_from: str,
        while_server_reads: Callable[[], None],
    ) -> smtplib.SMTP | None:
        if job.recipient is None or message is None:
            self._record(job, DeliveryStatus.SKIPPED, "contact no longer active")
            self.outcome.add("skipped")
            return smtp
        self.rate.wait()
        try:
            if not current_app.config["SMTP_HOST"]:
                # No relay configured (development): into the Maildir outbox, like all mail.
                self._flush_outcomes()
                deliver_raw(job.recipient.email, message.raw)
                reply = "250 written to the outbox"
            else:
                if smtp is None:
                    smtp = connect_smtp()
                reply = _send_one(
                    smtp,
                    envelope_from,
                    job.recipient.email,
                    message.wire,
                    before_data=self._flush_outcomes,
                    while_server_reads=while_server_reads,
                )
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            self._fail_or_retry(job, code, reply)
        except smtplib.SMTPResponseException as error:
            self._fail_or_retry(job, error.smtp_code, error.smtp_error)
            if error.smtp_code == 421:  # the server is closing the connection
                smtp = _discard(smtp)
        except (*_TEMPORARY_ERRORS, TimeoutError) as error:
            self._retry(job, f"connection problem: {error!r}")
            smtp = _discard(smtp)
        else:
            self._record(job, DeliveryStatus.SENT, reply, message_id=message.message_id)
            self.outcome.add("sent")
        return smtp

    def _fail_or_retry(self, job: _Job, code: int, reply: bytes | str) -> None:
        text = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
        if 400 <= code < 500:
            self._retry(job, text)
        else:
            self._record(job, DeliveryStatus.FAILED, text)
            self.outcome.add("failed")

    def _retry(self, job: _Job, reply: str) -> None:
        if job.attempts >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
            self._record(job, DeliveryStatus.FAILED, f"gave up after {job.attempts}: {reply}")
            self.outcome.add("failed")
            return
        self._record(
            job, DeliveryStatus.QUEUED, reply, next_attempt_at=utcnow() + retry_delay(job.attempts)
        )
        self.outcome.add("retried")

    def _record(
        self,
        job: _Job,
        status: DeliveryStatus,
        reply: str,
        *,
        message_id: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Note one outcome, to be committed by the next `_flush_outcomes`: at the latest
        before this connection's next DATA, which keeps the duplicate bound at one message."""
        self._local.unrecorded.append(
            {
                "delivery_id": job.delivery_id,
                "worker": self.id,
                "status": status,
                "reply": reply[:500],
                "message_id": message_id,
                "sent_at": utcnow() if status is DeliveryStatus.SENT else None,
                "next_attempt_at": next_attempt_at,
            }
        )

    def _flush_outcomes(self) -> None:
        """Commit the noted outcomes; only while this worker still holds their rows."""
        unrecorded = self._local.unrecorded
        if unrecorded:
            connection = self._local.connection
            with self._writing:
                connection.execute(_RECORD_OUTCOME, unrecorded)
                connection.commit()
            unrecorded.clear()


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


def _send_one(
    smtp: smtplib.SMTP,
    sender: str,
    recipient: str,
    wire: bytes,
    *,
    before_data: Callable[[], None],
    while_server_reads: Callable[[], None],
) -> str:
    """One SMTP transaction; returns the server's reply to DATA (it often names a queue id).

    The worker's own bookkeeping runs while the server is busy: `before_data` (committing the
    previous outcome) while it handles MAIL FROM, `while_server_reads` (building the next
    message) while it reads this one. The addresses were validated when stored, so they go
    out as they are: smtplib's own quoting parses each address again, which costs more than
    the rest of the transaction."""
    smtp.ehlo_or_helo_if_needed()
    smtp.putcmd("mail", f"FROM:<{sender}>")
    before_data()
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    smtp.putcmd("rcpt", f"TO:<{recipient}>")
    code, reply = smtp.getreply()
    if code not in (250, 251):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(wire)
    while_server_reads()
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    return f"{code} {reply.decode(errors='replace')}"


def _discard(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
