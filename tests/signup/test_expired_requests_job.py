"""Expired sign-up requests are deleted by a recurring housekeeping job of the worker."""

from datetime import timedelta

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs.models import Job, JobStatus
from jeg_contacts.signup.models import SignupRequest
from tests.conftest import post_signup


def test_worker_deletes_requests_whose_link_expired_and_keeps_the_others(app, client):
    post_signup(client, app)
    max_age = timedelta(days=app.config["CONFIRM_LINK_MAX_AGE_DAYS"])
    with app.app_context():
        contact_id = db.session.scalar(sa.select(Contact.id))
        for age in (max_age + timedelta(minutes=1), max_age - timedelta(minutes=1)):
            db.session.add(
                SignupRequest(contact_id=contact_id, proposal={}, created_at=utcnow() - age)
            )
        db.session.commit()

    result = app.test_cli_runner().invoke(args=["worker", "--until-idle", "--quiet"])
    assert result.exit_code == 0, result.output

    with app.app_context():
        ages = [utcnow() - at for at in db.session.scalars(sa.select(SignupRequest.created_at))]
        assert len(ages) == 1 and ages[0] < max_age
        runs = db.session.scalars(
            sa.select(Job).where(Job.kind == "signup.forget_expired_requests").order_by(Job.id)
        ).all()
        assert [job.status for job in runs] == [JobStatus.DONE, JobStatus.QUEUED]
        assert runs[0].result == {"deleted": 1}
        assert runs[1].run_after > utcnow() + timedelta(minutes=59)
