"""A sender thread: claims a batch, prepares it, and hands each message to its channel,
recording each outcome before the next message can reach anyone (see `mailing.worker`)."""

import functools
import math
import threading
import time
from collections.abc import Callable

from flask import Flask

from jeg_contacts.extensions import db
from jeg_contacts.mailer.messages import MessageBuildError, ReadyMessage
from jeg_contacts.mailing import queue, relay
from jeg_contacts.mailing.channels import Channel, Result, Verdict, open_channel
from jeg_contacts.mailing.models import AnnouncementStatus
from jeg_contacts.mailing.preparation import Job, Preparation
from jeg_contacts.mailing.queue import DeliveryQueue, Outcome, OutcomeLog


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


class Sender:
    """One sender thread's loop, on its own database connection and its own channel."""

    def __init__(
        self,
        app: Flask,
        delivery_queue: DeliveryQueue,
        preparation: Preparation,
        *,
        outcome: Outcome,
        rate: RateLimiter,
        stop: threading.Event,
        batch_size: int,
        poll_seconds: float,
    ) -> None:
        self.app = app
        self.queue = delivery_queue
        self.preparation = preparation
        self.outcome = outcome
        self.rate = rate
        self.stop = stop
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.idle = False  # nothing was due at the last claim
        self._status_checked: dict[int, tuple[AnnouncementStatus | None, float]] = {}

    def run(self) -> None:
        """Claim and send until stopped (the thread's target)."""
        with self.app.app_context(), db.engine.connect() as connection:
            if db.engine.dialect.name == "postgresql":
                # Outcome commits need not wait for the disk: a worker crash cannot undo them,
                # and a database server crash costs at most a few duplicate sends.
                connection.exec_driver_sql("SET synchronous_commit TO off")
                connection.commit()
            log = self.queue.outcome_log(connection, self.outcome)
            channel = open_channel()
            try:
                while not self.stop.is_set():
                    ids = self.queue.claim(connection, self.batch_size)
                    if not ids:
                        self.idle = True
                        self.stop.wait(self.poll_seconds)
                        continue
                    self.idle = False
                    self._send_batch(self.preparation.jobs(connection, ids), log, channel)
            finally:
                log.flush()
                channel.close()

    def _send_batch(self, jobs: list[Job], log: OutcomeLog, channel: Channel) -> None:
        """Send one claimed batch, building each message while the other side takes the one
        before it (its think time would otherwise be idle time here)."""
        built: dict[int, ReadyMessage | MessageBuildError] = {}

        def build(job: Job | None) -> None:
            if job is not None and job.recipient is not None and job.delivery_id not in built:
                try:
                    built[job.delivery_id] = self.preparation.build(job, job.recipient)
                except MessageBuildError as error:
                    # Kept as the outcome: this one fails, the rest of the batch goes out.
                    built[job.delivery_id] = error

        for position, job in enumerate(jobs):
            if self.stop.is_set() or not self._still_sending(job.announcement_id):
                log.flush()
                self.queue.release([j.delivery_id for j in jobs[position:]])
                break
            following = jobs[position + 1] if position + 1 < len(jobs) else None
            build(job)
            message = built.pop(job.delivery_id, None)
            if isinstance(message, MessageBuildError):
                log.failed(job.delivery_id, f"message not built: {message}")
                continue
            if not self._deliver(job, message, log, channel, functools.partial(build, following)):
                # The relay failed, not this recipient: the rest of the batch, this one
                # included, goes back to the queue without an attempt counted.
                log.flush()
                self.queue.release([j.delivery_id for j in jobs[position:]])
                break
        log.flush()

    def _deliver(
        self,
        job: Job,
        message: ReadyMessage | None,
        log: OutcomeLog,
        channel: Channel,
        while_in_flight: Callable[[], None],
    ) -> bool:
        """Send one message and note its outcome; False when the send was paused instead."""
        if job.recipient is None or message is None:
            log.skipped(job.delivery_id, "contact no longer active")
            return True
        self.rate.wait()
        # The earlier outcomes are committed before this message can reach anyone: a crash
        # leaves at most this one message sent but not recorded.
        verdict = channel.send(
            job.recipient, message, before_handover=log.flush, while_in_flight=while_in_flight
        )
        if verdict.result is Result.SENT:
            log.sent(job.delivery_id, verdict.reply, message.message_id)
        elif verdict.result is Result.RETRY:
            log.retry(job.delivery_id, job.attempts, verdict.reply)
        elif verdict.result is Result.PAUSE:
            self._pause(job.announcement_id, verdict)
            return False
        else:
            log.failed(job.delivery_id, verdict.reply)
        return True

    def _pause(self, announcement_id: int, verdict: Verdict) -> None:
        """Pause the send for a relay problem, before its rows go back to the queue (so no
        other thread claims them meanwhile)."""
        with self.queue.writing:
            paused = relay.pause_for_relay_problem(announcement_id, verdict.reason, verdict.reply)
            db.session.commit()
        if paused:
            self.app.logger.warning(
                "announcement %d paused: mail relay problem (%s): %s",
                announcement_id,
                verdict.reason,
                verdict.reply,
            )
        self._status_checked[announcement_id] = (AnnouncementStatus.PAUSED, time.monotonic())

    def _still_sending(self, announcement_id: int) -> bool:
        """Whether the announcement is still being sent (looked up at most once a second, so
        a pause or cancel takes effect within a second without a query per message)."""
        status, at = self._status_checked.get(announcement_id, (None, -math.inf))
        if time.monotonic() - at >= 1.0:
            status = queue.announcement_status(announcement_id)
            self._status_checked[announcement_id] = (status, time.monotonic())
        return status is AnnouncementStatus.SENDING
