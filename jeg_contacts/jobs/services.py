"""Enqueue, claim, lease, report and finish jobs: the job table's whole protocol.

Claims, completions and failures are conditional UPDATEs on (id, worker_id, status), so a
runner that lost its lease (a reclaim gave the job to another runner) changes nothing.
PostgreSQL claims with FOR UPDATE SKIP LOCKED, so runners never wait on each other's rows;
SQLite has one writer at a time, which makes the same UPDATE atomic there."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs import registry
from jeg_contacts.jobs.models import Job, JobStatus

# A retry never waits longer than this, however many attempts came before.
MAX_RETRY_DELAY = timedelta(hours=6)
ERROR_LENGTH = 2000
# The error of a job taken back from a dead worker (kept if it runs out of attempts so).
WORKER_STOPPED = "Its worker stopped before it finished."


def enqueue(
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    run_after: datetime | None = None,
    created_by_id: int | None = None,
    subject: str | None = None,
    dedupe_key: str | None = None,
) -> Job | None:
    """Queue a job of a registered kind (committed with the caller's transaction); None if
    an unfinished job already holds `dedupe_key`."""
    spec = registry.get(kind)
    if spec is None:
        raise ValueError(f"no job kind {kind!r} is registered")
    values = {
        "kind": kind,
        "status": JobStatus.QUEUED,
        "params": params or {},
        "subject": subject,
        "dedupe_key": dedupe_key,
        "run_after": run_after or utcnow(),
        "max_attempts": spec.max_attempts or current_app.config["JOB_MAX_ATTEMPTS"],
        "created_by_id": created_by_id,
        "created_at": utcnow(),
    }
    job_id = db.session.execute(_insert_unless_key_taken(values).returning(Job.id)).scalar()
    return None if job_id is None else db.session.get(Job, job_id)


def _insert_unless_key_taken(values: dict[str, Any]) -> sa.Insert:
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert(Job).values(values)
    elif dialect == "sqlite":
        insert = sqlite.insert(Job).values(values)
    else:  # pragma: no cover - the app runs on SQLite or PostgreSQL only
        raise NotImplementedError(dialect)
    return insert.on_conflict_do_nothing(index_elements=["dedupe_key"])


def latest(subject: str, kinds: tuple[str, ...] = ()) -> Job | None:
    """The most recent job about `subject` (of one of `kinds`, if given)."""
    query = sa.select(Job).where(Job.subject == subject)
    if kinds:
        query = query.where(Job.kind.in_(kinds))
    return db.session.scalar(query.order_by(Job.id.desc()).limit(1))


def recurring_key(kind: str) -> str:
    return f"recurring:{kind}"


def ensure_recurring() -> None:
    """Keep one unfinished job of every recurring kind (due now if none was pending)."""
    for spec in registry.recurring():
        enqueue(spec.name, dedupe_key=recurring_key(spec.name))


def claim(worker_id: str, kinds: list[str]) -> int | None:
    """Take the next due job of one of `kinds` for `worker_id`; the caller commits."""
    if not kinds:
        return None
    candidate = (
        sa.select(Job.id)
        .where(Job.status == JobStatus.QUEUED, Job.run_after <= utcnow(), Job.kind.in_(kinds))
        .order_by(Job.run_after, Job.id)
        .limit(1)
    )
    if db.engine.dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    now = utcnow()
    return db.session.execute(
        sa.update(Job)
        .where(Job.id == candidate.scalar_subquery(), Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker_id,
            attempts=Job.attempts + 1,
            heartbeat_at=now,
            started_at=now,
            progress_done=None,
            progress_total=None,
            progress_text=None,
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).scalar()


@dataclass(frozen=True)
class Progress:
    done: int | None = None
    total: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class Lease:
    """What a heartbeat learnt: whether the job is still ours, and whether staff cancelled it."""

    held: bool
    cancel_requested: bool = False


def heartbeat(job_id: int, worker_id: str, progress: Progress | None = None) -> Lease:
    """Renew the lease of a running job, with its progress, in a transaction of its own (the
    job's own work commits only at its end, and pages read the progress meanwhile)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow(), **_progress_values(progress)}
    with db.engine.begin() as connection:
        row = connection.execute(
            sa.update(Job)
            .where(_held_by(job_id, worker_id))
            .values(values)
            .returning(Job.cancel_requested)
        ).first()
    return Lease(held=row is not None, cancel_requested=bool(row and row.cancel_requested))


def _progress_values(progress: Progress | None) -> dict[str, Any]:
    if progress is None:
        return {}
    return {
        "progress_done": progress.done,
        "progress_total": progress.total,
        "progress_text": (progress.text or "")[:200] or None,
    }


def _held_by(job_id: int, worker_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)


def _finish(job_id: int, worker_id: str, status: JobStatus, **values: Any) -> bool:
    finished = db.session.execute(
        sa.update(Job)
        .where(_held_by(job_id, worker_id))
        .values(status=status, worker_id=None, finished_at=utcnow(), dedupe_key=None, **values)
        .returning(Job.kind)
        .execution_options(synchronize_session=False)
    ).scalar()
    if finished is not None:
        _schedule_next(finished)
    return finished is not None


def _schedule_next(kind: str) -> None:
    spec = registry.get(kind)
    if spec is not None and spec.every is not None:
        enqueue(kind, run_after=utcnow() + spec.every, dedupe_key=recurring_key(kind))


def complete(
    job_id: int,
    worker_id: str,
    result: dict[str, Any] | None,
    progress: Progress | None = None,
) -> bool:
    """Mark the job done with its result and last progress, in the caller's transaction (the
    one holding the handler's work); False if the job is no longer this worker's, and then
    nothing may be committed."""
    values = _progress_values(progress)
    return _finish(job_id, worker_id, JobStatus.DONE, result=result, error=None, **values)


def fail(job_id: int, worker_id: str, error: str, *, retry: bool = True) -> JobStatus | None:
    """Record a failed attempt: queued again after a growing delay while attempts remain
    (and `retry`), failed for good otherwise. None if the job is no longer this worker's."""
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or job.worker_id != worker_id or job.status is not JobStatus.RUNNING:
        return None
    error = error[:ERROR_LENGTH]
    if retry and job.attempts < job.max_attempts:
        queued = db.session.execute(
            sa.update(Job)
            .where(_held_by(job_id, worker_id))
            .values(
                status=JobStatus.QUEUED,
                worker_id=None,
                error=error,
                run_after=utcnow() + retry_delay(job.kind, job.attempts),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        return JobStatus.QUEUED if queued else None
    return JobStatus.FAILED if _finish(job_id, worker_id, JobStatus.FAILED, error=error) else None


def retry_delay(kind: str, attempts: int) -> timedelta:
    """How long a job waits after its `attempts`-th failure: the base, doubled each time."""
    spec = registry.get(kind)
    base = (spec and spec.retry_base) or timedelta(
        seconds=current_app.config["JOB_RETRY_BASE_SECONDS"]
    )
    return min(base * 2 ** max(0, attempts - 1), MAX_RETRY_DELAY)


def release(job_id: int, worker_id: str) -> bool:
    """Hand a running job back to the queue without counting the attempt (its runner stops)."""
    return bool(
        db.session.execute(
            sa.update(Job)
            .where(_held_by(job_id, worker_id))
            .values(status=JobStatus.QUEUED, worker_id=None, attempts=Job.attempts - 1)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def cancel(job_id: int) -> None:
    """Cancel a queued job at once; ask a running one to stop (its handler decides when)."""
    db.session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, finished_at=utcnow(), dedupe_key=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )


def mark_cancelled(job_id: int, worker_id: str) -> bool:
    return _finish(job_id, worker_id, JobStatus.CANCELLED)


def reclaim(worker_id: str, *, dead_workers: set[str] = frozenset()) -> int:
    """Take back running jobs whose runner is gone: its lease (WORKER_LEASE_SECONDS without a
    heartbeat) expired, or it is known dead. They run again while attempts remain; the
    caller commits."""
    lease = timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
    orphaned = sa.and_(
        Job.status == JobStatus.RUNNING,
        sa.or_(Job.worker_id.is_(None), Job.worker_id != worker_id),
        sa.or_(Job.heartbeat_at < utcnow() - lease, Job.worker_id.in_(dead_workers or {""})),
    )
    stopped = WORKER_STOPPED
    exhausted = db.session.scalars(
        sa.select(Job.id).where(orphaned, Job.attempts >= Job.max_attempts)
    ).all()
    for job_id in exhausted:
        job = db.session.get(Job, job_id, populate_existing=True)
        if job is not None and job.status is JobStatus.RUNNING:
            _finish(job_id, job.worker_id, JobStatus.FAILED, error=stopped)
    return (
        len(exhausted)
        + db.session.execute(
            sa.update(Job)
            .where(orphaned)
            .values(status=JobStatus.QUEUED, worker_id=None, error=stopped, run_after=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def running_workers() -> list[str]:
    """The worker ids holding running jobs (the runner checks which are dead processes)."""
    return list(
        db.session.scalars(
            sa.select(Job.worker_id).where(Job.status == JobStatus.RUNNING).distinct()
        )
    )
