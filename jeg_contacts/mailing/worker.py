"""The delivery worker: drains the queue over reused SMTP connections, safely under crashes.

Crash safety: a delivery is marked `sending` (claimed by this worker) before its DATA goes
out, and `sent` after the server's 250 reply, in a commit made while the server handles the
next message's MAIL FROM and always before that message's DATA. A worker killed at any
moment therefore leaves at most one message per SMTP connection sent-but-not-recorded: after
a restart those few are sent again (the duplicate bound is the concurrency), every other
claimed row is simply queued again, and nothing is lost.

Claimed rows of a dead worker are reclaimed at start-up when it is known to be dead (SQLite,
where one worker runs, or the same host with its process gone) and otherwise once its
heartbeat is older than WORKER_LEASE_SECONDS.

The parts: `queue` (claims, leases, reclaim, outcomes), `preparation` (each recipient's
message), `channels` (how a message reaches its recipient: the SMTP session of `mailer`),
`sending` (one sender thread's loop). This module runs the threads and the supervisor."""

import math
import threading
import time
from collections.abc import Callable

from flask import Flask

from jeg_contacts.extensions import db
from jeg_contacts.mailing import queue
from jeg_contacts.mailing.preparation import Preparation
from jeg_contacts.mailing.queue import DeliveryQueue, Outcome
from jeg_contacts.mailing.sending import RateLimiter, Sender


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
        self.queue = DeliveryQueue(app)
        self.id = self.queue.worker_id
        self.outcome = Outcome()
        self._stop = threading.Event()

    def run(self) -> Outcome:
        """Send until stopped (or, with until_idle, until nothing is due); the tally."""
        with self.app.app_context():
            preparation = Preparation()
            self.queue.register()
            self.queue.reclaim(at_start=True)
            db.session.commit()
        senders = [
            Sender(
                self.app,
                self.queue,
                preparation,
                outcome=self.outcome,
                rate=self.rate,
                stop=self._stop,
                batch_size=self.batch_size,
                poll_seconds=self.poll_seconds,
            )
            for _index in range(self.concurrency)
        ]
        threads = [
            threading.Thread(target=sender.run, name=f"sender-{index}")
            for index, sender in enumerate(senders)
        ]
        for thread in threads:
            thread.start()
        try:
            self._supervise(senders)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join()
            with self.app.app_context():
                self.queue.unregister()
                db.session.commit()
        return self.outcome

    def stop(self) -> None:
        self._stop.set()

    def _supervise(self, senders: list[Sender]) -> None:
        lease = self.app.config["WORKER_LEASE_SECONDS"]
        # time.monotonic() counts from an arbitrary point, on Linux the boot: a "last done"
        # of 0.0 would read as "just done" on a machine up for less than an interval. So
        # the first round does every periodic job.
        never = -math.inf
        last_heartbeat = last_reclaim = last_progress = never
        with self.app.app_context():
            while not self._stop.is_set():
                now = time.monotonic()
                with self.queue.writing:
                    if now - last_heartbeat >= min(5.0, lease / 3):
                        self.queue.heartbeat()
                        last_heartbeat = now
                    if now - last_reclaim >= min(10.0, lease / 3):
                        self.queue.reclaim(at_start=False)
                        last_reclaim = now
                    queue.complete_finished()
                    db.session.commit()
                if self.progress and now - last_progress >= 2.0:
                    self._report_progress()
                    last_progress = now
                if (
                    self.until_idle
                    and all(sender.idle for sender in senders)
                    and not self.queue.anything_due()
                ):
                    break
                self._stop.wait(min(self.poll_seconds, 0.5))
            with self.queue.writing:
                queue.complete_finished()
                db.session.commit()
            if self.progress:
                self._report_progress()

    def _report_progress(self) -> None:
        for announcement_id, rows in queue.counts_while_sending().items():
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
