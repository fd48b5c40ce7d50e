"""Dry runs and imports of uploaded files, as jobs of the worker (jeg_contacts.jobs): the
page enqueues one, `flask worker` runs it, and the page follows the job's row.

An import writes everything in one transaction, and the job runner commits it together with
the job's completion: a worker killed half-way leaves the database as it was, and the job,
taken back once its lease expires, runs again from the start, so nothing is imported twice.
One job at a time per upload: the job's dedupe key is the upload's subject, so a double
click or a second tab is refused. The file stays in the upload's folder (uploads.py), with
the report of rejected rows; the dry run's preview and the import's result are the result of
the job's row.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError

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
from jeg_contacts.jobs import services as jobs
from jeg_contacts.jobs.models import FINISHED, JobStatus
from jeg_contacts.jobs.models import Job as JobRow
from jeg_contacts.jobs.registry import job
from jeg_contacts.jobs.runner import JobCancelled, JobContext, JobFailed

# A job not heard of for this long is shown as not responding: a queued one no worker took,
# or a running one whose worker stopped renewing its lease (it will be taken back).
STALE_AFTER = timedelta(seconds=60)
WRITING = "writing"  # the progress text while the checked changes are written


class Kind(StrEnum):
    CHECK = "check"  # the dry run: every row checked, nothing written
    IMPORT = "import"


JOB_KINDS = {Kind.CHECK: "imports.check", Kind.IMPORT: "imports.commit"}
_KINDS = {name: kind for kind, name in JOB_KINDS.items()}


class State(StrEnum):
    QUEUED = "queued"  # waiting for the worker
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    OUTDATED = "outdated"  # an import refused: the directory changed since the dry run
    INTERRUPTED = "interrupted"  # its worker stopped each time it ran it


class JobRunning(Exception):
    """A dry run or an import of this upload is queued or running already."""


class AlreadyImported(Exception):
    """This upload was imported; it cannot be imported twice."""


@dataclass
class Job:
    """One dry run or import of an upload, as its page shows it."""

    kind: Kind
    state: State
    user_id: int | None
    created_at: datetime
    started_at: datetime | None = None
    heartbeat: datetime | None = None
    rows_done: int = 0
    rows_total: int | None = None  # data rows in the file (an XLSX sheet's may count blanks)
    writing: bool = False  # every row checked, the changes being written
    finished_at: datetime | None = None
    error: str | None = None

    @classmethod
    def of(cls, row: JobRow) -> "Job":
        result = row.result or {}
        state = {
            JobStatus.QUEUED: State.QUEUED,
            JobStatus.RUNNING: State.RUNNING,
            JobStatus.DONE: State.OUTDATED if result.get("outdated") else State.DONE,
            JobStatus.FAILED: State.FAILED,
            JobStatus.CANCELLED: State.INTERRUPTED,
        }[row.status]
        if row.status is JobStatus.FAILED and row.error == jobs.WORKER_STOPPED:
            state = State.INTERRUPTED
        return cls(
            kind=_KINDS[row.kind],
            state=state,
            user_id=row.created_by_id,
            created_at=row.created_at,
            started_at=row.started_at,
            heartbeat=row.heartbeat_at,
            rows_done=row.progress_done or 0,
            rows_total=row.progress_total,
            writing=row.progress_text == WRITING,
            finished_at=row.finished_at,
            error=row.error,
        )

    @property
    def running(self) -> bool:
        return self.state in (State.QUEUED, State.RUNNING)

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
        if self.state is State.QUEUED:
            return utcnow() - self.created_at > STALE_AFTER
        return self.running and utcnow() - (self.heartbeat or self.created_at) > STALE_AFTER

    @property
    def progress_text(self) -> str:
        if self.state is State.QUEUED:
            return "Waiting for the worker to start it…"
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
        elapsed = (utcnow() - (self.started_at or self.created_at)).total_seconds()
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


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds / 10) * 10:.0f} seconds"
    return f"{round(seconds / 60):.0f} minutes"


# --- What the pages ask --------------------------------------------------------------------


def current(upload: uploads.Upload) -> Job | None:
    """The upload's latest dry run or import."""
    row = jobs.latest(upload.subject, tuple(JOB_KINDS.values()))
    return None if row is None else Job.of(row)


def _finished_rows(upload: uploads.Upload) -> list[JobRow]:
    return list(
        db.session.scalars(
            sa.select(JobRow)
            .where(JobRow.subject == upload.subject, JobRow.status == JobStatus.DONE)
            .order_by(JobRow.id.desc())
        )
    )


def imported(upload: uploads.Upload) -> dict[str, Any] | None:
    """What the upload's import did, once it is imported."""
    for row in _finished_rows(upload):
        if row.kind == JOB_KINDS[Kind.IMPORT] and "imported" in (row.result or {}):
            return row.result["imported"]
    return None


def load(token: str, user_id: int) -> uploads.Upload | None:
    """The upload (uploads.load) with what its import did, if it was imported."""
    upload = uploads.load(token, user_id)
    if upload is not None:
        upload.result = imported(upload)
    return upload


def recent(user_id: int) -> list[uploads.Upload]:
    found = uploads.recent(user_id)
    for upload in found:
        upload.result = imported(upload)
    return found


def settings_key(upload: uploads.Upload, settings: ImportSettings) -> str:
    """The reading options and settings a dry run was made with, as one comparable string."""
    return json.dumps(
        [upload.encoding, upload.delimiter, asdict(settings)], default=str, sort_keys=True
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


@dataclass
class Preview:
    summary: ImportSummary
    checked_at: datetime


def preview(upload: uploads.Upload, settings: ImportSettings) -> Preview | None:
    """The latest dry run of the upload, if it was made with these settings."""
    for row in _finished_rows(upload):
        data = (row.result or {}).get("preview")
        if data is None:
            continue
        if data.get("settings") != settings_key(upload, settings):
            return None
        try:
            return Preview(
                _summary_from(data["summary"]), datetime.fromisoformat(data["checked_at"])
            )
        except (KeyError, TypeError, ValueError):
            return None
    return None


def _preview_data(
    upload: uploads.Upload, settings: ImportSettings, summary: ImportSummary
) -> dict[str, Any]:
    return {
        "settings": settings_key(upload, settings),
        "checked_at": utcnow().isoformat(),
        "summary": _summary_data(summary),
    }


# --- Starting ------------------------------------------------------------------------------


def start_check(upload: uploads.Upload) -> None:
    """Queue a dry run of the upload with its saved settings; JobRunning if a job is queued
    or runs. The caller commits."""
    _start(upload, Kind.CHECK, {})


def start_import(upload: uploads.Upload, expected: dict[str, int]) -> None:
    """Queue the import of the upload, to go ahead if the dry run's numbers (`expected`)
    still hold; JobRunning if a job is queued or runs, AlreadyImported once it is imported.
    The caller commits."""
    _start(upload, Kind.IMPORT, {"expected": expected})


def _start(upload: uploads.Upload, kind: Kind, extra: dict[str, Any]) -> None:
    if imported(upload) is not None:
        raise AlreadyImported
    queued = jobs.enqueue(
        JOB_KINDS[kind],
        {"token": upload.token, "user_id": upload.user_id, **extra},
        created_by_id=upload.user_id,
        subject=upload.subject,
        dedupe_key=upload.subject,
    )
    if queued is None:
        raise JobRunning


def discard(upload: uploads.Upload) -> None:
    """Delete the upload, its files and its jobs' rows (their previews hold rows of the
    file); JobRunning while a job is queued or works on it. The caller commits."""
    latest = current(upload)
    if latest is not None and latest.running:
        raise JobRunning
    forget(upload.token)
    uploads.discard(upload)


def forget(token: str) -> None:
    """Delete the job rows of an upload (previews and results hold rows of its file)."""
    db.session.execute(
        sa.delete(JobRow)
        .where(JobRow.subject == uploads.subject_of(token), JobRow.status.in_(FINISHED))
        .execution_options(synchronize_session=False)
    )


# --- Running (in the worker) ---------------------------------------------------------------


class _Progress:
    """The importer's progress: rows checked so far, then the writing. Checking is also
    where a job asked to stop (its worker is stopping) stops: it runs again later."""

    def __init__(self, context: JobContext, total: int | None) -> None:
        self.context, self.total, self.done = context, total, 0
        context.progress(0, total, "checking")

    def advance(self, rows: int) -> None:
        self.done += rows
        self.context.raise_if_cancelled()
        self.context.progress(self.done, self.total, "checking")

    def writing(self) -> None:
        self.context.progress(self.done, self.total, WRITING)
        self.context.heartbeat()


@job(JOB_KINDS[Kind.CHECK])
@job(JOB_KINDS[Kind.IMPORT])
def run(context: JobContext) -> dict[str, Any]:
    """A dry run or an import of an upload (the worker's side of start_check/start_import)."""
    kind = _KINDS[context.kind]
    upload = uploads.load(context.params["token"], context.params["user_id"])
    if upload is None:
        raise JobFailed("The file was deleted before the work on it began.")
    if kind is Kind.IMPORT and imported(upload) is not None:
        return {"already_imported": True}
    report_path = upload.folder / f"rejected.{kind.value}.csv"
    try:
        summary, settings = _pass(context, upload, kind, report_path)
    except PreviewOutdated as outdated:
        # Nothing was written, and the pass saw every row: its numbers are the new preview.
        db.session.rollback()
        report_path.replace(upload.report_path)
        settings = upload.import_settings(*_header_and_mapping(upload))
        return {"outdated": True, "preview": _preview_data(upload, settings, outdated.summary)}
    except JobCancelled:
        report_path.unlink(missing_ok=True)
        raise
    except Exception as error:
        raise _failed(upload, kind, report_path, error) from error
    if kind is Kind.CHECK:
        report_path.replace(upload.report_path)
        return {"preview": _preview_data(upload, settings, summary)}
    context.after_commit(lambda: (report_path.replace(upload.report_path), upload.forget_file()))
    return {
        "imported": {
            **summary.expected(),
            "rows": summary.rows,
            "new_organisations": summary.new_organisations,
            "emails_sent": summary.emails_sent,
            "emails_held": summary.emails_held,
            "status": settings.status.value,
            "update_existing": settings.update_existing,
        }
    }


def _header_and_mapping(upload: uploads.Upload) -> tuple[list[str], list[str]]:
    header = upload.open_table().header
    return header, suggest_mapping(header)


def _pass(
    context: JobContext, upload: uploads.Upload, kind: Kind, report_path: Path
) -> tuple[ImportSummary, ImportSettings]:
    """Check every row of the upload, and for an import write the changes (uncommitted)."""
    table = upload.open_table()
    settings = upload.import_settings(table.header, suggest_mapping(table.header))
    user = db.session.get(User, upload.user_id)
    if user is None:
        raise ValidationFailed("user", "The staff account that started it was removed.")
    progress = _Progress(context, table.row_count)
    writes = kind is Kind.IMPORT
    with report_path.open("w", newline="", encoding="utf-8-sig") as report:
        importer = Importer(
            table,
            settings,
            file_name=upload.file_name,
            actor=Actor(user, user.email),
            write=writes,
            report=report,
            progress=progress.advance,
            on_writing=progress.writing,
        )
        summary = importer.run(expected=context.params.get("expected") if writes else None)
    return summary, settings


def _failed(upload: uploads.Upload, kind: Kind, report_path: Path, error: Exception) -> JobFailed:
    """The failure staff read on the upload's page (the traceback, if any, goes to the log)."""
    db.session.rollback()
    report_path.unlink(missing_ok=True)
    if isinstance(error, (UnreadableFile, TooManyPending, ValidationFailed)):
        return JobFailed(error.message)
    if isinstance(error, IntegrityError):
        return JobFailed(
            "Some of these contacts were added by someone else while the import ran. "
            "Check the file again, then import."
        )
    if isinstance(error, OSError):
        return JobFailed(f"A file could not be read or written ({error.strerror}).")
    current_app.logger.error("%s of upload %s failed", kind, upload.token, exc_info=error)
    if isinstance(error, OperationalError):
        return JobFailed(
            "The database did not take the changes (it may be busy or full); try again in a moment."
        )
    return JobFailed("An unexpected error stopped it; the administrators can find it in the log.")


@job("imports.remove_stale_uploads", every=uploads.KEEP_FOR / 24)
def remove_stale_uploads(context: JobContext) -> dict[str, int]:
    """Housekeeping: uploads hold personal data, so they go after a day even if nobody opens
    the import page (which tidies them too); with them, their jobs' rows."""
    uploads.remove_stale()
    gone = [
        subject
        for subject in db.session.scalars(
            sa.select(JobRow.subject)
            .where(JobRow.subject.like("upload:%"), JobRow.status.in_(FINISHED))
            .distinct()
        )
        if not uploads.exists(subject.removeprefix("upload:"))
    ]
    for subject in gone:
        forget(subject.removeprefix("upload:"))
    return {"forgotten": len(gone)}
