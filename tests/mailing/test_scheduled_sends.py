"""A scheduled send is a job due at its time: it starts the send if the announcement is
still scheduled for that time; pause, resume and cancel keep their meaning."""

import time
from datetime import datetime, timedelta

import sqlalchemy as sa

from jeg_contacts.audit.services import COMMAND_LINE
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs.models import Job, JobStatus
from jeg_contacts.jobs.runner import JobRunner
from jeg_contacts.mailing import drafts, services
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus
from jeg_contacts.mailing.scheduling import START_SCHEDULED
from tests.conftest import outbox_messages
from tests.mailing.conftest import add_contacts

SOON = timedelta(seconds=1.5)


def schedule(app, *operations) -> tuple[int, datetime]:
    """A draft to two contacts, scheduled SOON from now, then `operations` applied to it."""
    add_contacts(app, ["a@example.org", "b@example.org"])
    with app.app_context():
        draft = drafts.AnnouncementDraft(subject_en="Workshop", body_en="News.", criteria={})
        announcement = drafts.save_draft(draft, by=COMMAND_LINE)
        at = utcnow() + SOON
        services.start_sending(announcement, at, by=COMMAND_LINE)
        for operation in operations:
            operation(announcement, by=COMMAND_LINE)
        db.session.commit()
        return announcement.id, at


def status_of(app, announcement_id: int) -> AnnouncementStatus:
    with app.app_context():
        return db.session.get(Announcement, announcement_id).status


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - utcnow()).total_seconds()) + 0.05)


def start_jobs(app) -> list[Job]:
    JobRunner(app).run_until_idle()
    with app.app_context():
        jobs = db.session.scalars(sa.select(Job).where(Job.kind == START_SCHEDULED)).all()
        db.session.expunge_all()
        return list(jobs)


def test_scheduled_announcement_starts_at_its_time_and_is_sent(app):
    announcement_id, at = schedule(app)

    [waiting] = start_jobs(app)
    assert waiting.status is JobStatus.QUEUED and waiting.run_after == at
    assert waiting.subject == f"announcement:{announcement_id}"
    assert status_of(app, announcement_id) is AnnouncementStatus.SCHEDULED

    wait_until(at)
    result = app.test_cli_runner().invoke(args=["worker", "--until-idle", "--quiet"])
    assert result.exit_code == 0, result.output
    assert status_of(app, announcement_id) is AnnouncementStatus.SENT
    assert len(outbox_messages(app)) == 2
    [done] = start_jobs(app)
    assert done.status is JobStatus.DONE and done.result == {"started": True}


def test_announcement_paused_before_its_time_stays_paused(app):
    announcement_id, at = schedule(app, services.pause)
    wait_until(at)
    [job] = start_jobs(app)
    assert job.result == {"started": False}
    assert status_of(app, announcement_id) is AnnouncementStatus.PAUSED

    with app.app_context():  # resumed after its time: it starts at once
        services.resume(db.session.get(Announcement, announcement_id), by=COMMAND_LINE)
        db.session.commit()
    assert status_of(app, announcement_id) is AnnouncementStatus.SENDING


def test_announcement_paused_and_resumed_before_its_time_starts_at_its_time(app):
    announcement_id, at = schedule(app, services.pause, services.resume)
    assert status_of(app, announcement_id) is AnnouncementStatus.SCHEDULED
    wait_until(at)
    [job] = start_jobs(app)
    assert job.result == {"started": True}
    assert status_of(app, announcement_id) is AnnouncementStatus.SENDING


def test_cancelled_announcement_is_not_started(app):
    announcement_id, at = schedule(app, services.cancel)
    wait_until(at)
    [job] = start_jobs(app)
    assert job.result == {"started": False}
    assert status_of(app, announcement_id) is AnnouncementStatus.CANCELLED


def test_refused_schedule_queues_no_job(app):
    with app.app_context():
        draft = drafts.AnnouncementDraft(subject_en="Nobody", body_en="News.", criteria={})
        announcement = drafts.save_draft(draft, by=COMMAND_LINE)
        try:
            services.start_sending(announcement, utcnow() + timedelta(hours=1))
        except ValidationFailed:
            db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0
