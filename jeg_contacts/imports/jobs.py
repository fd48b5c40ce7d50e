"""Dry runs and imports of uploaded files, run in a background thread so that the request
returns at once; their progress is kept beside the upload, so any web worker can show it.

A thread of the web process rather than a task queue: the app has no broker (its delivery
worker polls the database), a dry run or an import of the largest file allowed takes about a
minute, and the Importer writes everything in one transaction committed at the end, so a job
that dies with its process leaves the database as it was and can simply be started again.
Besides the file (uploads.py), the upload's folder holds:

  job.lock      flock()ed by the job's thread for as long as the job runs. The kernel releases
                it when the process dies, however it dies, so a job recorded as running whose
                lock nobody holds was interrupted (a process id alone can be reused, and a
                heartbeat alone cannot tell a dead job from a slow one that may still commit).
                Taking the lock is atomic across threads and worker processes, so a double
                click cannot start two imports of one file.
  job.json      the latest job: what it is, how far it got, when it was last heard of, which
                process runs it, and how it ended.
  preview.json  the latest dry run's summary, with the settings it was made with.
"""

import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import IntegrityError, OperationalError

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.auth.models import User
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.imports import uploads
from jeg_contacts.imports.mapping import ImportSettings, suggest_mapping
from jeg_contacts.imports.reading import UnreadableFile
from jeg_contacts.imports.services import (
    Actor,
    Importer,
    ImportSummary,
    Outcome,
    PreviewOutdated,
    RowResult,
    TooManyPending,
)

HEARTBEAT_SECONDS = 1.0
# A running job not heard of for this long is shown as not responding. It is not taken for
# interrupted while its lock is held: its process lives, and the job may still commit.
STALE_AFTER = timedelta(seconds=60)
# A page looking at a job holds its lock for a moment; starting one tries a few times.
_START_ATTEMPTS = 10
_START_RETRY_SECONDS = 0.05


class Kind(StrEnum):
    CHECK = "check"  # the dry run: every row checked, nothing written
    IMPORT = "import"


class State(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    OUTDATED = "outdated"  # an import refused: the directory changed since the dry run
    INTERRUPTED = "interrupted"  # its process stopped before the job finished


class JobRunning(Exception):
    """A dry run or an import of this upload is running already."""


class AlreadyImported(Exception):
    """This upload was imported; it cannot be imported twice."""


@dataclass
class Job:
    """One dry run or import of an upload, as recorded in its job.json."""

    kind: Kind
    state: State
    user_id: int
    started_at: str
    heartbeat: str
    pid: int
    host: str
    rows_done: int = 0
    rows_total: int | None = None  # data rows in the file (an XLSX sheet's may count blanks)
    writing: bool = False  # every row checked, the changes being written
    finished_at: str | None = None
    error: str | None = None
    # An interrupted import that the audit log shows committed: its process stopped after
    # the commit but before it noted the result.
    recorded: bool = False

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    @property
    def finished(self) -> bool:
        return not self.running

    @property
    def percent(self) -> int | None:
        if not self.rows_total:
            return None
        return min(100, self.rows_done * 100 // self.rows_total)

    @property
    def unresponsive(self) -> bool:
        return self.running and utcnow() - _parse(self.heartbeat) > STALE_AFTER

    @property
    def progress_text(self) -> str:
        if self.writing:
            return "Every row is checked; writing the changes to the database…"
        if self.rows_total is None:  # not known before the file is read, nor for some XLSX
            return f"{self.rows_done:,} rows checked" if self.rows_done else "Checking the rows…"
        return f"{self.rows_done:,} of {self.rows_total:,} rows checked ({self.percent}%)"

    @property
    def time_left_text(self) -> str:
        """How long the checking should still take, from its pace so far."""
        if not self.running or self.writing or not self.rows_total or self.rows_done < 1000:
            return ""
        elapsed = (utcnow() - _parse(self.started_at)).total_seconds()
        seconds = elapsed * (self.rows_total - self.rows_done) / self.rows_done
        left = "less than 10 seconds" if seconds < 10 else _duration(seconds)
        if self.kind is Kind.CHECK:
            return f"About {left} left."
        return f"About {left} left to check the rows; writing them then takes a little while."

    def status(self) -> dict[str, Any]:
        """What the progress page shows, as the JSON it polls."""
        return {
            "kind": self.kind.value,
            "state": self.state.value,
            "finished": self.finished,
            "rows_done": self.rows_done,
            "rows_total": self.rows_total,
            "percent": self.percent,
            "writing": self.writing,
            "text": self.progress_text,
            "time_left": self.time_left_text,
            "unresponsive": self.unresponsive,
        }


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds / 10) * 10:.0f} seconds"
    return f"{round(seconds / 60):.0f} minutes"


# --- Files ---------------------------------------------------------------------------------


def _job_path(upload: uploads.Upload) -> Path:
    return upload.folder / "job.json"


def _preview_path(upload: uploads.Upload) -> Path:
    return upload.folder / "preview.json"


def _read_job(upload: uploads.Upload) -> Job | None:
    data = uploads.read_json(_job_path(upload))
    if not isinstance(data, dict):
        return None
    try:
        return Job(**{**data, "kind": Kind(data["kind"]), "state": State(data["state"])})
    except (KeyError, TypeError, ValueError):
        return None


def _save_job(path: Path, job: Job) -> None:
    uploads.write_json(path, asdict(job))


class _Lock:
    """An upload's job lock (see the module docstring)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor

    @classmethod
    def take(cls, upload: uploads.Upload, attempts: int = 1) -> "_Lock | None":
        """The lock, or None if a job holds it."""
        descriptor = os.open(upload.folder / "job.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            for attempt in range(attempts):
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if attempt + 1 < attempts:
                        time.sleep(_START_RETRY_SECONDS)
                    continue
                return cls(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)
        return None

    def release(self) -> None:
        os.close(self.descriptor)  # which releases the flock


# --- What the pages ask --------------------------------------------------------------------


def current(upload: uploads.Upload) -> Job | None:
    """The upload's latest job; one recorded as running whose process died is marked
    interrupted here."""
    job = _read_job(upload)
    if job is None or not job.running:
        return job
    try:
        lock = _Lock.take(upload)
    except OSError:  # the upload was deleted meanwhile
        return job
    if lock is None:
        return job  # its thread holds the lock: it runs
    try:
        job = _read_job(upload)  # it may have finished since the first look
        if job is not None and job.running:
            job.state = State.INTERRUPTED
            job.finished_at = utcnow().isoformat()
            job.recorded = job.kind is Kind.IMPORT and _import_recorded(upload, job)
            _save_job(_job_path(upload), job)
    finally:
        lock.release()
    return job


def _import_recorded(upload: uploads.Upload, job: Job) -> bool:
    """Whether the audit log has this import, committed after the job started."""
    entries = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "contacts.imported",
            AuditEntry.user_id == job.user_id,
            AuditEntry.at >= _parse(job.started_at),
        )
    )
    return any((entry.changes or {}).get("file") == upload.file_name for entry in entries)


def settings_key(upload: uploads.Upload, settings: ImportSettings) -> str:
    """The reading options and settings a dry run was made with, as one comparable string."""
    return json.dumps(
        [upload.encoding, upload.delimiter, asdict(settings)], default=str, sort_keys=True
    )


@dataclass
class Preview:
    summary: ImportSummary
    checked_at: datetime


def preview(upload: uploads.Upload, settings: ImportSettings) -> Preview | None:
    """The latest dry run of the upload, if it was made with these settings."""
    data = uploads.read_json(_preview_path(upload))
    if not isinstance(data, dict) or data.get("settings") != settings_key(upload, settings):
        return None
    try:
        return Preview(_summary_from(data["summary"]), _parse(data["checked_at"]))
    except (KeyError, TypeError, ValueError):
        return None


def _save_preview(upload: uploads.Upload, settings: ImportSettings, summary: ImportSummary) -> None:
    uploads.write_json(
        _preview_path(upload),
        {
            "settings": settings_key(upload, settings),
            "checked_at": utcnow().isoformat(),
            "summary": _summary_data(summary),
        },
    )


def _summary_data(summary: ImportSummary) -> dict[str, Any]:
    return {
        "counts": {outcome.value: summary.counts[outcome] for outcome in Outcome},
        "examples": {
            outcome.value: [asdict(result) for result in summary.examples.get(outcome, [])]
            for outcome in Outcome
        },
        "new_organisations": summary.new_organisations,
        "pending": summary.pending,
    }


def _summary_from(data: dict[str, Any]) -> ImportSummary:
    summary = ImportSummary(
        examples={
            outcome: [
                RowResult(**{**result, "outcome": outcome})
                for result in data["examples"].get(outcome.value, [])
            ]
            for outcome in Outcome
        },
        new_organisations=data["new_organisations"],
        pending=data["pending"],
    )
    for outcome in Outcome:
        summary.counts[outcome] = data["counts"].get(outcome.value, 0)
    return summary


# --- Starting and running ------------------------------------------------------------------


def start_check(upload: uploads.Upload) -> None:
    """Start a dry run of the upload with its saved settings; JobRunning if a job runs."""
    _start(upload, Kind.CHECK)


def start_import(upload: uploads.Upload, expected: dict[str, int]) -> None:
    """Start importing the upload, if the dry run's numbers (`expected`) still hold;
    JobRunning if a job runs, AlreadyImported once it is imported."""
    _start(upload, Kind.IMPORT, expected)


def discard(upload: uploads.Upload) -> None:
    """Delete the upload and all its files; JobRunning while a job works on it."""
    lock = _Lock.take(upload, attempts=_START_ATTEMPTS)
    if lock is None:
        raise JobRunning
    try:
        uploads.discard(upload)
    finally:
        lock.release()


_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


def wait(timeout: float) -> bool:
    """Wait for the jobs running in this process to finish (tests, orderly shutdowns);
    False if some still run after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _start(upload: uploads.Upload, kind: Kind, expected: dict[str, int] | None = None) -> None:
    lock = _Lock.take(upload, attempts=_START_ATTEMPTS)
    if lock is None:
        raise JobRunning
    try:
        # As on disk now, under the lock: an import may have finished since the page loaded.
        fresh = uploads.load(upload.token, upload.user_id)
        if fresh is None or fresh.result is not None:
            raise AlreadyImported
        now = utcnow().isoformat()
        job = Job(kind, State.RUNNING, fresh.user_id, now, now, os.getpid(), socket.gethostname())
        _save_job(_job_path(fresh), job)
        runner = _Runner(current_app._get_current_object(), fresh, job, lock, expected)
        # Not a daemon: a process shutting down in good order (a deploy, Ctrl-C) lets the
        # job finish first. One that is killed loses it, and the page then says so.
        thread = threading.Thread(target=runner.run, name=f"import-{kind}-{fresh.token[:8]}")
        with _threads_lock:
            _threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with _threads_lock:
                _threads.discard(thread)
            raise
    except BaseException:
        lock.release()
        raise


class _Runner:
    """One job in its thread: the Importer in an app context of its own, a heartbeat beside
    it, and the job's lock until job.json says how it ended."""

    def __init__(
        self,
        app: Flask,
        upload: uploads.Upload,
        job: Job,
        lock: _Lock,
        expected: dict[str, int] | None,
    ) -> None:
        self.app = app
        self.upload = upload
        self.job = job
        self.lock = lock
        self.expected = expected
        self.importer: Importer | None = None
        self.committed = False
        self.stopping = threading.Event()
        # Found now: the heartbeat, and the end of the job, run outside any app context.
        self.job_path = _job_path(upload)

    def run(self) -> None:
        beat = threading.Thread(
            target=self._beat, name=f"{threading.current_thread().name}-beat", daemon=True
        )
        beat.start()
        try:
            with self.app.app_context():
                self._work()
        except Exception:
            # _work settles every failure of the import itself; this is the bookkeeping
            # around it (files of the upload), which must not take the thread down unseen.
            self.app.logger.exception("%s job of upload %s", self.job.kind, self.upload.token)
        finally:
            self.stopping.set()
            beat.join()
            if self.job.running and self.committed:
                self.job.state = State.DONE
            elif self.job.running:
                self.job.state = State.FAILED
                self.job.error = "It stopped unexpectedly; nothing was written to the database."
            self.job.finished_at = self.job.heartbeat = utcnow().isoformat()
            try:
                _save_job(self.job_path, self.job)
            except OSError:
                self.app.logger.exception("could not record how a job ended")
            finally:
                self.lock.release()
                with _threads_lock:
                    _threads.discard(threading.current_thread())

    def _beat(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.job.heartbeat = utcnow().isoformat()
            self.job.writing = self.importer is not None and self.importer.writing
            try:
                _save_job(self.job_path, self.job)
            except OSError:
                self.app.logger.warning("could not record the progress of a job", exc_info=True)

    def _advance(self, rows: int) -> None:
        self.job.rows_done += rows

    def _work(self) -> None:
        upload, job = self.upload, self.job
        writes = job.kind is Kind.IMPORT
        report_path = upload.folder / f"rejected.{job.kind.value}.csv"
        settings = None
        try:
            table = upload.open_table()
            job.rows_total = table.row_count
            settings = upload.import_settings(table.header, suggest_mapping(table.header))
            user = db.session.get(User, job.user_id)
            if user is None:
                raise ValidationFailed("user", "The staff account that started it was removed.")
            with report_path.open("w", newline="", encoding="utf-8-sig") as report:
                self.importer = Importer(
                    table,
                    settings,
                    file_name=upload.file_name,
                    actor=Actor(user, user.email),
                    write=writes,
                    report=report,
                    progress=self._advance,
                )
                summary = self.importer.run(expected=self.expected if writes else None)
            if writes:
                db.session.commit()
        except PreviewOutdated as outdated:
            db.session.rollback()
            # Nothing was written, and the pass saw every row: its numbers are the new preview.
            report_path.replace(upload.report_path)
            if settings is not None:
                _save_preview(upload, settings, outdated.summary)
            job.state = State.OUTDATED
            return
        except (UnreadableFile, TooManyPending, ValidationFailed) as error:
            self._failed(report_path, error.message)
            return
        except IntegrityError:
            self._failed(
                report_path,
                "Some of these contacts were added by someone else while the import ran. "
                "Check the file again, then import.",
            )
            return
        except OSError as error:
            self._failed(report_path, f"A file could not be read or written ({error.strerror}).")
            return
        except OperationalError:
            current_app.logger.exception("%s of upload %s failed", job.kind, upload.token)
            self._failed(
                report_path,
                "The database did not take the changes (it may be busy or full); try again in "
                "a moment.",
            )
            return
        except Exception:
            current_app.logger.exception("%s of upload %s failed", job.kind, upload.token)
            self._failed(
                report_path,
                "An unexpected error stopped it; the administrators can find it in the log.",
            )
            return
        # Committed: done whatever happens to the notes below (see run()). The state itself
        # changes only once they are written, or a poll could find it done with no result yet.
        self.committed = writes
        report_path.replace(upload.report_path)
        if writes:
            upload.save_result(
                {
                    **summary.expected(),
                    "rows": summary.rows,
                    "new_organisations": summary.new_organisations,
                    "emails_sent": summary.emails_sent,
                    "emails_held": summary.emails_held,
                    "status": settings.status.value,
                    "update_existing": settings.update_existing,
                }
            )
            upload.forget_file()
        else:
            _save_preview(upload, settings, summary)
        job.state = State.DONE

    def _failed(self, report_path: Path, message: str) -> None:
        db.session.rollback()
        report_path.unlink(missing_ok=True)
        self.job.state, self.job.error = State.FAILED, message
