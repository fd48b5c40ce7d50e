"""Scheduled sends: scheduling an announcement queues a job, due at the scheduled time, that
starts the send if the announcement is still scheduled for that time.

Pause, cancel and resume only change the announcement: a job that finds it paused,
cancelled or started meanwhile does nothing. A resume before the time leaves the job to
start it; a resume after the time starts the send itself (services.resume)."""

from datetime import datetime
from typing import Any

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs import services as jobs
from jeg_contacts.jobs.registry import job
from jeg_contacts.jobs.runner import JobContext
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus

START_SCHEDULED = "mailing.start_scheduled"


def queue_start(announcement: Announcement, created_by_id: int | None = None) -> None:
    """Queue the job starting `announcement` at its scheduled time (with the caller's
    transaction, so a refused schedule queues nothing)."""
    at = announcement.scheduled_at
    jobs.enqueue(
        START_SCHEDULED,
        {"announcement_id": announcement.id, "scheduled_at": at.isoformat()},
        run_after=at,
        subject=f"announcement:{announcement.id}",
        created_by_id=created_by_id,
    )


@job(START_SCHEDULED)
def start_scheduled(context: JobContext) -> dict[str, Any]:
    """Start sending, if the announcement is still scheduled for the time this job was for."""
    announcement = db.session.get(Announcement, context.params["announcement_id"])
    due = datetime.fromisoformat(context.params["scheduled_at"])
    if (
        announcement is None
        or announcement.status is not AnnouncementStatus.SCHEDULED
        or announcement.scheduled_at != due
    ):
        return {"started": False}
    announcement.status = AnnouncementStatus.SENDING
    announcement.started_at = utcnow()
    return {"started": True}
