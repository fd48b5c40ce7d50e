"""The `jobs` table: one row per unit of background work, queued until a runner claims it."""

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jeg_contacts.extensions import UTCDateTime, db, db_enum, utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for run_after, then for a runner
    RUNNING = "running"  # claimed: worker_id holds it while heartbeat_at stays fresh
    DONE = "done"
    FAILED = "failed"  # out of attempts, or a failure no retry can help; `error` says why
    CANCELLED = "cancelled"


FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(db.Model):
    """A job of a registered kind, with its parameters, its lease and what it produced."""

    __tablename__ = "jobs"
    __table_args__ = (
        # The claim: due, queued rows in order.
        sa.Index("ix_jobs_claim", "status", "run_after", "id"),
        # A page's question: the latest job about this upload or announcement.
        sa.Index("ix_jobs_subject", "subject", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[JobStatus] = mapped_column(
        db_enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # What the job is about ("upload:<token>", "announcement:<id>"), for pages to find it.
    subject: Mapped[str | None] = mapped_column(sa.String(200))
    # At most one unfinished job per key (a recurring kind, an upload's import): the key is
    # cleared when the job finishes, and NULLs never collide.
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    # The runner holding a running job, and when it last said it was alive.
    worker_id: Mapped[str | None] = mapped_column(sa.String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # What pages poll while it runs: rows done of total, and a short line of text.
    progress_done: Mapped[int | None]
    progress_total: Mapped[int | None]
    progress_text: Mapped[str | None] = mapped_column(sa.String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # The last failure, for staff to read (the traceback goes to the worker's log).
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int | None:
        if not self.progress_total or self.progress_done is None:
            return None
        return min(100, self.progress_done * 100 // self.progress_total)
