"""The job table's own housekeeping: finished jobs are kept for a while for staff to read,
then deleted (recurring kinds alone add 48 rows a day)."""

from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs.models import FINISHED, Job
from jeg_contacts.jobs.registry import job

if TYPE_CHECKING:
    from jeg_contacts.jobs.runner import JobContext

KEEP_FINISHED = timedelta(days=30)


@job("jobs.purge_finished", every=timedelta(days=1))
def purge_finished(context: "JobContext") -> dict[str, int]:
    """Delete jobs finished more than KEEP_FINISHED ago."""
    deleted = db.session.execute(
        sa.delete(Job)
        .where(Job.status.in_(FINISHED), Job.finished_at < utcnow() - KEEP_FINISHED)
        .execution_options(synchronize_session=False)
    ).rowcount
    return {"deleted": deleted}
