"""The job system: enqueue, claim, run, retry, fail, recur, cancel, through the real runner."""

import logging
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs import services
from jeg_contacts.jobs.models import Job, JobStatus
from jeg_contacts.jobs.runner import JobContext, JobFailed, JobRunner
from tests.conftest import create_staff
from tests.jobs.conftest import job_row, jobs_of, make_due


def topic(slug: str):
    from jeg_contacts.contacts.models import Topic, TopicGroup

    return Topic(slug=slug, label_en=slug, label_fr=slug, label_ru=slug, group=TopicGroup.GENERAL)


def topic_id(app, slug: str) -> int | None:
    from jeg_contacts.contacts.models import Topic

    with app.app_context():
        return db.session.scalar(sa.select(Topic.id).where(Topic.slug == slug))


def enqueue(app, kind, params=None, **options) -> int:
    with app.app_context():
        job = services.enqueue(kind, params, **options)
        db.session.commit()
        return job.id


def test_enqueued_job_runs_once_and_keeps_its_result_and_who_asked(app, register_kind):
    calls = []

    def add(context: JobContext) -> dict:
        calls.append(context.params)
        return {"sum": context.params["a"] + context.params["b"]}

    register_kind("test.add", add)
    staff_id = create_staff(app, "editor@unece.test", "editor")
    job_id = enqueue(app, "test.add", {"a": 2, "b": 3}, created_by_id=staff_id)
    assert job_row(app, job_id).status is JobStatus.QUEUED

    JobRunner(app).run_until_idle()
    JobRunner(app).run_until_idle()

    job = job_row(app, job_id)
    assert calls == [{"a": 2, "b": 3}]
    assert job.status is JobStatus.DONE and job.finished
    assert job.result == {"sum": 5}
    assert job.attempts == 1 and job.error is None and job.worker_id is None
    assert job.created_by_id == staff_id
    assert job.started_at <= job.finished_at


def test_unknown_kind_cannot_be_enqueued(app):
    with app.app_context(), pytest.raises(ValueError, match="no job kind"):
        services.enqueue("test.nobody-knows")


def test_handler_writes_are_committed_with_the_completion(app, register_kind):
    register_kind("test.add-topic", lambda context: db.session.add(topic("from-a-job")))
    enqueue(app, "test.add-topic")
    JobRunner(app).run_until_idle()
    assert topic_id(app, "from-a-job")


def test_failing_job_retries_with_growing_delays_then_fails_with_its_error(
    app, register_kind, caplog
):
    def explode(context: JobContext) -> None:
        raise RuntimeError(f"boom on attempt {context.attempt}")

    register_kind("test.explode", explode, max_attempts=3, retry_base=timedelta(seconds=40))
    job_id = enqueue(app, "test.explode", dedupe_key="explode-once")

    delays = []
    for attempt in (1, 2):
        before = utcnow()
        JobRunner(app).run_until_idle()
        job = job_row(app, job_id)
        assert job.status is JobStatus.QUEUED and job.attempts == attempt
        assert job.error == f"RuntimeError: boom on attempt {attempt}"
        delays.append(job.run_after - before)
        make_due(app, job_id)
    assert timedelta(seconds=39) < delays[0] <= timedelta(seconds=41)
    assert timedelta(seconds=79) < delays[1] <= timedelta(seconds=81)

    JobRunner(app).run_until_idle()
    job = job_row(app, job_id)
    assert job.status is JobStatus.FAILED and job.attempts == 3
    assert job.error == "RuntimeError: boom on attempt 3"
    assert job.dedupe_key is None and job.finished_at is not None
    # The traceback is in the log for the administrators, not in the row staff read.
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert len(failures) == 3
    assert "Traceback" not in job.error


def test_failure_explained_by_the_handler_is_not_retried(app, register_kind):
    def refuse(context: JobContext) -> None:
        raise JobFailed("The file cannot be read: it is not a spreadsheet.")

    register_kind("test.refuse", refuse, max_attempts=5)
    job_id = enqueue(app, "test.refuse")
    JobRunner(app).run_until_idle()
    job = job_row(app, job_id)
    assert job.status is JobStatus.FAILED and job.attempts == 1
    assert job.error == "The file cannot be read: it is not a spreadsheet."


def claim_as(app, worker_id: str, kind: str, heartbeat_age: timedelta) -> int:
    """Claim the next job of `kind` as another runner, last heard of `heartbeat_age` ago."""
    with app.app_context():
        job_id = services.claim(worker_id, [kind])
        db.session.execute(
            sa.update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - heartbeat_age)
        )
        db.session.commit()
        return job_id


def test_job_of_a_killed_worker_is_taken_back_once_its_lease_expires(app, register_kind):
    register_kind("test.echo", lambda context: {"ran": context.attempt})
    lease = timedelta(seconds=app.config["WORKER_LEASE_SECONDS"])
    expired_id = enqueue(app, "test.echo")
    claim_as(app, "elsewhere:4242:dead01", "test.echo", lease + timedelta(seconds=1))
    live_id = enqueue(app, "test.echo")
    claim_as(app, "elsewhere:4243:live01", "test.echo", timedelta(seconds=1))

    JobRunner(app).run_until_idle()

    expired = job_row(app, expired_id)
    assert expired.status is JobStatus.DONE and expired.result == {"ran": 2}
    # A runner still renewing its lease keeps its job, wherever it runs.
    live = job_row(app, live_id)
    assert live.status is JobStatus.RUNNING and live.worker_id == "elsewhere:4243:live01"


def test_job_of_a_dead_process_of_this_host_is_taken_back_at_once(app, register_kind):
    import os
    import socket
    import subprocess

    register_kind("test.echo", lambda context: {"ran": context.attempt})
    gone = subprocess.Popen(["true"])
    gone.wait()
    job_id = enqueue(app, "test.echo")
    claim_as(app, f"{socket.gethostname()}:{gone.pid}:dead02", "test.echo", timedelta(0))
    assert gone.pid != os.getpid()

    JobRunner(app).run_until_idle()
    assert job_row(app, job_id).status is JobStatus.DONE


def test_job_whose_worker_keeps_dying_fails_after_its_attempts(app, register_kind):
    register_kind("test.echo", lambda context: None, max_attempts=1)
    job_id = enqueue(app, "test.echo")
    claim_as(app, "elsewhere:4244:dead03", "test.echo", timedelta(hours=1))
    JobRunner(app).run_until_idle()
    job = job_row(app, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "Its worker stopped before it finished."


def test_runner_that_lost_its_lease_leaves_nothing_behind(app, register_kind):
    started, go_on = threading.Event(), threading.Event()

    def slow_write(context: JobContext) -> None:
        started.set()
        assert go_on.wait(10)
        db.session.add(topic("written-twice"))

    register_kind("test.slow-write", slow_write)
    job_id = enqueue(app, "test.slow-write")
    runner = threading.Thread(target=JobRunner(app).run_until_idle)
    runner.start()
    assert started.wait(10)
    with app.app_context():  # another runner reclaimed it meanwhile
        db.session.execute(
            sa.update(Job).where(Job.id == job_id).values(worker_id="elsewhere:1:other")
        )
        db.session.commit()
    go_on.set()
    runner.join(10)

    job = job_row(app, job_id)
    assert job.status is JobStatus.RUNNING and job.worker_id == "elsewhere:1:other"
    assert topic_id(app, "written-twice") is None


def test_two_runners_never_run_the_same_job(app, register_kind):
    ran: list[tuple[int, str]] = []
    lock = threading.Lock()

    def record(context: JobContext) -> None:
        with lock:
            ran.append((context.job_id, threading.current_thread().name))
        time.sleep(0.02)

    register_kind("test.record", record)
    job_ids = [enqueue(app, "test.record", {"n": n}) for n in range(30)]
    runners = [
        threading.Thread(target=JobRunner(app, poll_seconds=0.05).run_until_idle, name=name)
        for name in ("first", "second")
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(60)

    assert sorted(job_id for job_id, _name in ran) == job_ids
    assert {name for _id, name in ran} == {"first", "second"}
    assert {job.status for job in jobs_of(app, "test.record")} == {JobStatus.DONE}


def test_progress_can_be_read_while_the_job_runs(app, register_kind):
    halfway, finish = threading.Event(), threading.Event()

    def count(context: JobContext) -> dict:
        context.progress(3, 10, "3 of 10 rows checked")
        halfway.set()
        assert finish.wait(10)
        context.progress(10, 10, "10 of 10 rows checked")
        return {"rows": 10}

    register_kind("test.count", count)
    job_id = enqueue(app, "test.count")
    runner = threading.Thread(target=JobRunner(app).run_until_idle)
    runner.start()
    try:
        assert halfway.wait(10)
        deadline = time.monotonic() + 10
        while (job := job_row(app, job_id)).progress_done is None:
            assert time.monotonic() < deadline, "no progress recorded"
            time.sleep(0.1)
        assert job.status is JobStatus.RUNNING
        assert (job.progress_done, job.progress_total, job.percent) == (3, 10, 30)
        assert job.progress_text == "3 of 10 rows checked"
    finally:
        finish.set()
        runner.join(10)
    done = job_row(app, job_id)
    assert done.result == {"rows": 10}
    assert (done.progress_done, done.progress_text) == (10, "10 of 10 rows checked")


def test_recurring_job_stays_enqueued_and_runs_again_after_its_interval(app, register_kind):
    runs = []
    register_kind("test.tidy", lambda context: runs.append(1), every=timedelta(hours=1))

    JobRunner(app).run_until_idle()  # a runner starting enqueues it, due at once
    assert len(runs) == 1
    done, pending = jobs_of(app, "test.tidy")
    assert done.status is JobStatus.DONE and done.dedupe_key is None
    assert pending.status is JobStatus.QUEUED
    assert pending.dedupe_key == services.recurring_key("test.tidy")
    assert timedelta(minutes=59) < pending.run_after - done.finished_at < timedelta(minutes=61)

    with app.app_context():  # keeping it enqueued never makes a second pending row
        services.ensure_recurring()
        db.session.commit()
    JobRunner(app).run_until_idle()
    assert len(runs) == 1 and len(jobs_of(app, "test.tidy")) == 2

    make_due(app, pending.id)
    JobRunner(app).run_until_idle()
    assert len(runs) == 2
    statuses = [job.status for job in jobs_of(app, "test.tidy")]
    assert statuses == [JobStatus.DONE, JobStatus.DONE, JobStatus.QUEUED]


def test_dedupe_key_refuses_a_second_unfinished_job(app, register_kind):
    register_kind("test.echo", lambda context: None)
    with app.app_context():
        first = services.enqueue("test.echo", dedupe_key="upload:abc")
        assert services.enqueue("test.echo", dedupe_key="upload:abc") is None
        db.session.commit()
        assert first is not None
    JobRunner(app).run_until_idle()
    with app.app_context():  # finished: the key is free again
        assert services.enqueue("test.echo", dedupe_key="upload:abc") is not None


def test_cancelled_jobs_stop_queued_or_running(app, config_lease_short, register_kind):
    started = threading.Event()

    def patient(context: JobContext) -> None:
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            context.raise_if_cancelled()
            context.heartbeat()
            time.sleep(0.05)

    register_kind("test.patient", patient)
    waiting_id = enqueue(app, "test.patient", run_after=utcnow() + timedelta(hours=1))
    with app.app_context():
        services.cancel(waiting_id)
        db.session.commit()
    running_id = enqueue(app, "test.patient")
    runner = threading.Thread(target=JobRunner(app).run_until_idle)
    runner.start()
    assert started.wait(10)
    with app.app_context():
        services.cancel(running_id)
        db.session.commit()
    runner.join(15)
    assert not runner.is_alive()

    assert job_row(app, waiting_id).status is JobStatus.CANCELLED
    cancelled = job_row(app, running_id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.attempts == 1


def test_runner_stopping_hands_its_job_back_without_counting_the_attempt(app, register_kind):
    started = threading.Event()

    def patient(context: JobContext) -> None:
        started.set()
        while True:
            context.raise_if_cancelled()
            time.sleep(0.05)

    register_kind("test.patient", patient)
    job_id = enqueue(app, "test.patient")
    stop = threading.Event()
    runner = threading.Thread(target=JobRunner(app).run, args=(stop,))
    runner.start()
    assert started.wait(10)
    stop.set()
    runner.join(10)
    job = job_row(app, job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 0 and job.worker_id is None


def test_flask_worker_until_idle_runs_queued_jobs(app, register_kind):
    register_kind("test.echo", lambda context: {"hello": context.params["name"]})
    job_id = enqueue(app, "test.echo", {"name": "worker"})
    result = app.test_cli_runner().invoke(args=["worker", "--until-idle", "--quiet"])
    assert result.exit_code == 0, result.output
    job = job_row(app, job_id)
    assert job.status is JobStatus.DONE and job.result == {"hello": "worker"}


@pytest.fixture
def config_lease_short(app):
    """A 3-second lease: heartbeats (and so cancellations) every second."""
    app.config["WORKER_LEASE_SECONDS"] = 3


def test_latest_job_about_a_subject_is_found_finished_or_not(app, register_kind):
    register_kind("test.echo", lambda context: {"n": context.params["n"]})
    register_kind("test.other", lambda context: None)
    first = enqueue(app, "test.echo", {"n": 1}, subject="thing:abc")
    JobRunner(app).run_until_idle()
    second = enqueue(app, "test.echo", {"n": 2}, subject="thing:abc")
    enqueue(app, "test.other", subject="thing:abc")
    enqueue(app, "test.echo", {"n": 3}, subject="thing:xyz")
    with app.app_context():
        assert services.latest("thing:abc", ("test.echo",)).id == second
        assert services.latest("thing:abc").kind == "test.other"
        assert services.latest("thing:none") is None
        assert db.session.get(Job, first).result == {"n": 1}


def test_after_commit_actions_run_only_once_the_work_is_committed(app, register_kind):
    done = []

    def succeed(context: JobContext) -> None:
        context.after_commit(lambda: done.append(("ok", topic_id(app, "kept"))))
        db.session.add(topic("kept"))

    def refuse(context: JobContext) -> None:
        context.after_commit(lambda: done.append("never"))
        raise JobFailed("No.")

    register_kind("test.succeed", succeed)
    register_kind("test.refuse", refuse)
    enqueue(app, "test.succeed")
    enqueue(app, "test.refuse")
    JobRunner(app).run_until_idle()
    assert len(done) == 1 and done[0][0] == "ok" and done[0][1] is not None


def test_jobs_finished_a_month_ago_are_deleted(app, register_kind):
    register_kind("test.echo", lambda context: None)
    old, recent = enqueue(app, "test.echo"), enqueue(app, "test.echo")
    JobRunner(app).run_until_idle()
    with app.app_context():
        db.session.execute(
            sa.update(Job).where(Job.id == old).values(finished_at=utcnow() - timedelta(days=31))
        )
        db.session.execute(
            sa.update(Job)
            .where(Job.kind == "jobs.purge_finished")
            .values(run_after=utcnow() - timedelta(1))
        )
        db.session.commit()
    JobRunner(app).run_until_idle()
    with app.app_context():
        assert db.session.get(Job, old) is None and db.session.get(Job, recent) is not None
