"""Job kinds made up for the tests, registered for one test and gone after it."""

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs import registry
from jeg_contacts.jobs.models import Job


@pytest.fixture
def register_kind() -> Iterator[Callable[..., None]]:
    names: list[str] = []

    def register(name: str, handler: registry.Handler, **options: object) -> None:
        registry.register(name, handler, **options)
        names.append(name)

    yield register
    for name in names:
        registry.unregister(name)


def job_row(app: Flask, job_id: int) -> Job:
    """The job as stored now, usable outside the app context."""
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def jobs_of(app: Flask, kind: str) -> list[Job]:
    with app.app_context():
        jobs = list(db.session.scalars(sa.select(Job).where(Job.kind == kind).order_by(Job.id)))
        db.session.expunge_all()
        return jobs


def make_due(app: Flask, job_id: int) -> None:
    """Skip a job's wait (a retry's backoff, a recurring job's interval)."""
    with app.app_context():
        db.session.execute(
            sa.update(Job).where(Job.id == job_id).values(run_after=utcnow() - timedelta(1))
        )
        db.session.commit()
