"""The job runner: claims due jobs one at a time and runs their handlers, with a heartbeat.

`flask worker` runs one in a thread beside the delivery worker (`run(stop)`); tests and
`flask worker --until-idle` drain the queue with `run_until_idle()`. While a handler runs, a
second thread renews the job's lease every few seconds and writes its progress, so the
lease says whether the worker lives, not whether the handler remembered to report. A
worker that is killed stops renewing; once WORKER_LEASE_SECONDS pass, any runner takes the
job back (at once at start-up if it was a process of this host that is gone)."""

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from jeg_contacts.extensions import db
from jeg_contacts.jobs import housekeeping as _housekeeping  # noqa: F401  (its kind)
from jeg_contacts.jobs import registry, services
from jeg_contacts.jobs.models import Job
from jeg_contacts.jobs.services import Progress

# How often a running job's progress reaches the database, at most.
PROGRESS_SECONDS = 1.0


class JobFailed(Exception):
    """A failure the handler explains to staff; it is not retried (nothing would change)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobCancelled(Exception):
    """Raised by `JobContext.raise_if_cancelled`: the handler stops where it is."""


class JobContext:
    """What a handler gets: its job's parameters, and ways to report progress and to learn
    that it should stop (staff cancelled it, the worker is stopping, or its lease is lost)."""

    def __init__(self, job: Job, stopping: threading.Event) -> None:
        self.job_id = job.id
        self.kind = job.kind
        self.params: dict[str, Any] = dict(job.params or {})
        self.created_by_id = job.created_by_id
        self.attempt = job.attempts
        self._stopping = stopping
        self._cancel_requested = threading.Event()
        self._lost = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._progress: Progress | None = None  # not yet written
        self._latest: Progress | None = None
        self._after_commit: list[Callable[[], None]] = []

    def progress(self, done: int | None = None, total: int | None = None, text: str = "") -> None:
        """Note how far the job got; it reaches the database within PROGRESS_SECONDS."""
        with self._lock:
            self._progress = self._latest = Progress(done, total, text or None)

    def heartbeat(self) -> None:
        """Renew the lease (and write the progress) now rather than at the next beat."""
        self._wake.set()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Do `action` once the job's work is committed (a file to move or delete, say)."""
        self._after_commit.append(action)

    @property
    def cancelled(self) -> bool:
        return self._cancel_requested.is_set() or self._stopping.is_set() or self._lost.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled

    def _take_progress(self) -> Progress | None:
        with self._lock:
            progress, self._progress = self._progress, None
            return progress


class _Beat(threading.Thread):
    """Renews a running job's lease and writes its progress until told to stop."""

    def __init__(self, app: Flask, worker_id: str, context: JobContext) -> None:
        super().__init__(name=f"job-{context.job_id}-beat", daemon=True)
        self.app, self.worker_id, self.context = app, worker_id, context
        self.done = threading.Event()
        lease = app.config["WORKER_LEASE_SECONDS"]
        self.interval = min(5.0, lease / 3)

    def run(self) -> None:
        context = self.context
        last_beat = time.monotonic()
        with self.app.app_context():
            while not self.done.is_set():
                context._wake.wait(PROGRESS_SECONDS)
                if self.done.is_set():
                    break
                woken = context._wake.is_set()
                context._wake.clear()
                progress = context._take_progress()
                if not (woken or progress or time.monotonic() - last_beat >= self.interval):
                    continue
                try:
                    lease = services.heartbeat(context.job_id, self.worker_id, progress)
                except SQLAlchemyError:
                    # SQLite: the job's own transaction may hold the database; next time.
                    current_app.logger.debug("job %s: heartbeat deferred", context.job_id)
                    continue
                last_beat = time.monotonic()
                if not lease.held:
                    context._lost.set()
                elif lease.cancel_requested:
                    context._cancel_requested.set()


class JobRunner:
    """Runs the jobs of every registered kind, one at a time."""

    def __init__(self, app: Flask, *, poll_seconds: float = 1.0) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.ran = 0
        self._last_housekeeping = 0.0

    def run(self, stop: threading.Event) -> int:
        """Run jobs until `stop` is set; returns how many ran."""
        return self._loop(stop, until_idle=False)

    def run_until_idle(self) -> int:
        """Run jobs until none is due; returns how many ran."""
        return self._loop(threading.Event(), until_idle=True)

    def _loop(self, stop: threading.Event, *, until_idle: bool) -> int:
        with self.app.app_context():
            self._housekeep(at_start=True)
            self._last_housekeeping = time.monotonic()
            while not stop.is_set():
                try:
                    ran = self._run_next(stop)
                except SQLAlchemyError:
                    if until_idle:
                        raise
                    # The database may be restarting: a worker keeps trying.
                    current_app.logger.exception("job runner: the database failed")
                    db.session.rollback()
                    ran = False
                if not ran:
                    if until_idle:
                        break
                    stop.wait(self.poll_seconds)
        return self.ran

    def _run_next(self, stop: threading.Event) -> bool:
        """Run the next due job, if there is one."""
        lease = self.app.config["WORKER_LEASE_SECONDS"]
        if time.monotonic() - self._last_housekeeping >= min(10.0, lease / 3):
            self._housekeep(at_start=False)
            self._last_housekeeping = time.monotonic()
        job_id = services.claim(self.id, [kind.name for kind in registry.kinds()])
        db.session.commit()
        if job_id is None:
            return False
        self._execute(job_id, stop)
        self.ran += 1
        return True

    def _housekeep(self, *, at_start: bool) -> None:
        dead = self._dead_workers() if at_start else set()
        services.reclaim(self.id, dead_workers=dead)
        services.ensure_recurring()
        db.session.commit()

    def _dead_workers(self) -> set[str]:
        """Runners of this host whose process is gone: no need to wait for their lease."""
        hostname = socket.gethostname()
        dead = set()
        for worker_id in services.running_workers():
            host, _colon, rest = (worker_id or "").partition(":")
            pid = rest.partition(":")[0]
            if host == hostname and pid.isdigit() and not _process_alive(int(pid)):
                dead.add(worker_id)
        return dead

    def _execute(self, job_id: int, stop: threading.Event) -> None:
        job = db.session.get(Job, job_id, populate_existing=True)
        spec = registry.get(job.kind)
        context = JobContext(job, stop)
        db.session.rollback()  # end the read: the handler starts a transaction of its own
        beat = _Beat(self.app, self.id, context)
        beat.start()
        try:
            self._settle(spec, context)
        finally:
            # The beat may be waiting (SQLite) for the handler's transaction: told to stop
            # first, joined once that transaction is over.
            beat.done.set()
            context._wake.set()
            db.session.rollback()
            beat.join()

    def _settle(self, spec: registry.JobKind, context: JobContext) -> None:
        if not self._run_handler(spec, context):
            return
        for action in context._after_commit:
            try:
                action()
            except Exception:
                current_app.logger.exception("job %s: after its commit", context.job_id)

    def _run_handler(self, spec: registry.JobKind, context: JobContext) -> bool:
        """Run the handler; commit its work with the job's completion (True), or record why
        not (False)."""
        job_id = context.job_id
        try:
            result = spec.handler(context)
            if not services.complete(job_id, self.id, result, context._latest):
                # Another runner took the job over: its run is the one that counts.
                current_app.logger.warning("job %s: lease lost, its work undone", job_id)
                db.session.rollback()
                return False
            db.session.commit()
            return True
        except JobCancelled:
            db.session.rollback()
            if context._cancel_requested.is_set():
                services.mark_cancelled(job_id, self.id)
            elif not context._lost.is_set():
                services.release(job_id, self.id)
            db.session.commit()
        except JobFailed as failure:
            db.session.rollback()
            services.fail(job_id, self.id, failure.message, retry=False)
            db.session.commit()
        except Exception as error:
            current_app.logger.exception("job %s (%s) failed", job_id, spec.name)
            db.session.rollback()
            services.fail(job_id, self.id, f"{type(error).__name__}: {error}")
            db.session.commit()
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
