"""/metrics: off unless METRICS_TOKEN is set, then only with the bearer token; figures read
from the database after a real send through a real SMTP server."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs.services import enqueue
from jeg_contacts.mailing.queue import DeliveryQueue
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import make_app
from tests.mailing.conftest import add_contacts, flaky_smtp  # noqa: F401 (fixture)
from tests.mailing.test_worker import _announce

TOKEN = "metrics-token-0123456789abcdef"


def scrape(app, token: str = TOKEN) -> dict[str, float]:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for line in response.get_data(as_text=True).splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) jeg_\w+ .+", line), line
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_are_off_without_a_token(tmp_path):
    app = make_app(tmp_path)
    assert app.test_client().get("/metrics").status_code == 404
    response = app.test_client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_metrics_need_the_bearer_token(tmp_path, authorization):
    app = make_app(tmp_path, METRICS_TOKEN=TOKEN)
    headers = {"Authorization": authorization} if authorization else {}
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "jeg_" not in response.get_data(as_text=True)


def test_metrics_count_the_queue_sends_failures_bounces_jobs_and_workers(tmp_path, flaky_smtp):  # noqa: F811
    _handler, port = flaky_smtp
    app = make_app(
        tmp_path,
        METRICS_TOKEN=TOKEN,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        DELIVERY_MAX_ATTEMPTS=1,
    )
    add_contacts(app, ["a@example.org", "b@example.org", "perm@example.org"])
    add_contacts(app, ["gone@example.org"], status="bounced")
    _announce(app)

    queued = scrape(app)
    assert queued['jeg_deliveries{status="queued"}'] == 3
    assert queued['jeg_deliveries{status="sent"}'] == 0
    assert queued['jeg_deliveries_sent_per_minute{window="1m"}'] == 0
    assert queued["jeg_contacts_bounced"] == 1
    assert queued["jeg_workers"] == 0

    DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()
    with app.app_context():
        enqueue("jobs.purge_finished")
        enqueue("signup.forget_expired_requests", run_after=utcnow() + timedelta(hours=1))
        DeliveryQueue(app).register()
        db.session.commit()

    sent = scrape(app)
    assert sent['jeg_deliveries{status="queued"}'] == 0
    assert sent['jeg_deliveries{status="sent"}'] == 2
    assert sent['jeg_deliveries{status="failed"}'] == 1
    assert sent["jeg_deliveries_failed"] == 1
    assert sent['jeg_deliveries_sent_per_minute{window="1m"}'] == 2
    assert sent['jeg_deliveries_sent_per_minute{window="5m"}'] == 0.4
    assert sent['jeg_jobs_due{kind="jobs.purge_finished"}'] == 1
    assert 'jeg_jobs_due{kind="signup.forget_expired_requests"}' not in sent  # not yet due
    assert sent["jeg_workers"] == 1
    [age] = [value for name, value in sent.items() if name.startswith("jeg_worker_heartbeat")]
    assert 0 <= age < 5
    with app.app_context():
        db.session.execute(sa.update(Contact).values(status=ContactStatus.ACTIVE))
        db.session.commit()
    assert scrape(app)["jeg_contacts_bounced"] == 0
