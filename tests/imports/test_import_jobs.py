"""Checks and imports are jobs of the worker: progress, failures, double submits, jobs
whose worker died, and the rest of the app staying usable meanwhile. Every test runs the
real job runner; a few run it in a thread and hold it at a gate to look at it while it runs."""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, Organisation
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.imports import jobs, uploads
from jeg_contacts.imports import services as imports
from jeg_contacts.imports.services import Importer
from jeg_contacts.jobs import runner as job_runner
from jeg_contacts.jobs import services as job_services
from jeg_contacts.jobs.models import Job as JobRow
from tests.conftest import TEST_DATABASE_URL, audit_entries, csrf_token, post_signup, run_jobs
from tests.imports.conftest import contacts_by_email, count_contacts, csv_bytes, row
from tests.imports.web_import import (
    commit,
    finished,
    job_results,
    page_url,
    post_file,
    preview_url,
    start_commit,
    status,
    upload,
)

GATE_TIMEOUT = 30


@pytest.fixture(autouse=True)
def quick_progress(monkeypatch):
    # Progress reaches the job's row within PROGRESS_SECONDS; a second is long for a test.
    monkeypatch.setattr(job_runner, "PROGRESS_SECONDS", 0.02)


@contextmanager
def worker(app) -> Iterator[None]:
    """The worker's job runner, in a thread, for as long as the block runs."""
    stop = threading.Event()
    thread = threading.Thread(target=job_runner.JobRunner(app, poll_seconds=0.02).run, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(GATE_TIMEOUT)


class Gate:
    """Holds a job's thread in the middle of checking rows until opened."""

    def __init__(self, monkeypatch, *, writing_only: bool = False) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()
        original = Importer._chunk
        gate = self

        def held_chunk(importer, rows):
            if importer.write or not writing_only:
                gate.reached.set()
                assert gate.opened.wait(GATE_TIMEOUT), "the test never opened the gate"
            return original(importer, rows)

        monkeypatch.setattr(Importer, "_chunk", held_chunk)

    def wait_until_reached(self) -> None:
        assert self.reached.wait(GATE_TIMEOUT), "the job never reached the gate"

    def open(self) -> None:
        self.opened.set()


def folder(app, url: str) -> Path:
    return Path(app.instance_path) / "imports" / url.rsplit("/", 1)[1]


def stored_upload(app, url: str) -> uploads.Upload:
    note = uploads.read_json(folder(app, url) / "upload.json")
    with app.test_request_context():
        return uploads.load(note["token"], note["user_id"])


def test_a_check_answers_at_once_and_its_page_follows_the_progress(app, editor_client, monkeypatch):
    gate = Gate(monkeypatch)
    response = post_file(editor_client, csv_bytes([row("ana@example.org")]))
    url = page_url(response)
    queued = status(editor_client, url)
    with worker(app):
        try:
            gate.wait_until_reached()
            while (running := status(editor_client, url))["rows_total"] is None:
                pass  # until the job's progress reaches its row

            page = editor_client.get(url).get_data(as_text=True)
        finally:
            gate.open()
        done = finished(editor_client, url)

    assert queued | {"state": "queued", "finished": False} == queued
    assert queued["text"] == "Waiting for the worker to start it…"

    assert "Checking contacts.csv" in page
    assert '<progress id="job-bar" max="1" value="0"' in page
    assert 'aria-describedby="job-text"' in page
    assert "0 of 1 rows checked (0%)" in page
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    assert "import_progress.js" in page
    assert running | {"state": "running", "finished": False, "kind": "check"} == running
    assert running["rows_total"] == 1
    assert done["state"] == "done"
    assert "<strong>1</strong> to add" in editor_client.get(url).get_data(as_text=True)


def test_progress_counts_the_rows_checked(app, editor_client, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    content = csv_bytes([row(f"p{number}@example.org") for number in range(5)])
    gate = Gate(monkeypatch)
    url = page_url(post_file(editor_client, content))
    seen = set()
    with worker(app):
        gate.wait_until_reached()
        gate.open()
        while not (current := status(editor_client, url))["finished"]:
            seen.add((current["rows_done"], current["rows_total"]))
    seen.add((current.get("rows_done"), current.get("rows_total")))

    assert (5, 5) in seen
    assert current["state"] == "done"
    assert current["url"].endswith("#preview")


def test_an_import_runs_in_the_background_and_then_shows_its_result(
    app, editor_client, monkeypatch
):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    gate = Gate(monkeypatch, writing_only=True)

    response = start_commit(editor_client, url)
    with worker(app):
        gate.wait_until_reached()
        page = editor_client.get(url).get_data(as_text=True)
        gate.open()
        done = finished(editor_client, url)

    assert response.status_code == 302
    assert response.headers["Location"] == url
    assert "Importing contacts.csv" in page
    assert "nothing is imported" in page
    assert done | {"state": "done", "kind": "import", "finished": True} == done
    assert "contacts.csv is imported" in editor_client.get(url).get_data(as_text=True)
    assert set(contacts_by_email(app)) == {"ana@example.org"}


def refuse_address(app, email: str) -> None:
    """Make the database refuse to store a contact with this address."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(
                sa.text(
                    "CREATE FUNCTION refuse_contact() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused by the test'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            db.session.execute(
                sa.text(
                    "CREATE TRIGGER refuse_contact BEFORE INSERT ON contacts "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_contact()"
                )
            )
        else:
            db.session.execute(
                sa.text(
                    "CREATE TRIGGER refuse_contact BEFORE INSERT ON contacts "
                    f"WHEN NEW.email = '{email}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        db.session.commit()


def test_an_import_the_database_refuses_half_way_fails_and_writes_nothing(
    app, editor_client, monkeypatch
):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 1)  # rows before the refused one are written
    emails = ["ana@example.org", "bo@example.org", "refused@example.org", "cy@example.org"]
    url = preview_url(upload(editor_client, csv_bytes([row(email) for email in emails])))
    refuse_address(app, "refused@example.org")

    start_commit(editor_client, url)
    outcome = finished(editor_client, url)

    assert outcome["state"] == "failed"
    page = editor_client.get(url).get_data(as_text=True)
    assert "Nothing was imported." in page
    assert "Import again: add 4" in page
    assert count_contacts(app) == 0
    assert audit_entries(app, "contacts.imported") == []
    assert not any("imported" in (result or {}) for result in job_results(app, url))


def test_a_file_that_became_unreadable_ends_the_check_and_the_import_clearly(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    preview = editor_client.get(url).get_data(as_text=True)
    (folder(app, url) / "upload").write_bytes(bytes(range(256)) * 64)

    start_commit(editor_client, url, preview)
    assert finished(editor_client, url)["state"] == "failed"
    page = editor_client.get(url)

    assert page.status_code == 400  # the preview page cannot read the file either
    assert "it contains binary data" in page.get_data(as_text=True)
    assert count_contacts(app) == 0
    with app.test_request_context():
        job = jobs.current(stored_upload(app, url))
    assert (job.kind, job.state) == (jobs.Kind.IMPORT, jobs.State.FAILED)
    assert "it contains binary data" in job.error


def test_a_second_import_is_refused_while_the_first_runs(app, editor_client, monkeypatch):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    preview = editor_client.get(url).get_data(as_text=True)
    gate = Gate(monkeypatch, writing_only=True)

    start_commit(editor_client, url, preview)
    with worker(app):
        gate.wait_until_reached()
        second = start_commit(editor_client, url, preview)
        page = editor_client.get(url).get_data(as_text=True)
        gate.open()
        finished(editor_client, url)

    assert second.status_code == 302
    assert "This file is being imported already" in page
    assert "Importing contacts.csv" in page
    assert len(audit_entries(app, "contacts.imported")) == 1


def test_a_finished_import_cannot_be_imported_again(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    preview = editor_client.get(url).get_data(as_text=True)
    commit(editor_client, url, preview)

    again = start_commit(editor_client, url, preview)
    finished(editor_client, url)

    assert again.status_code == 302
    assert len(audit_entries(app, "contacts.imported")) == 1
    assert count_contacts(app) == 1


def test_two_simultaneous_starts_make_one_import(app, editor_client, monkeypatch):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    stored = stored_upload(app, url)
    expected = {"create": 1, "update": 0, "unchanged": 0, "skip": 0, "reject": 0, "pending": 1}
    gate = Gate(monkeypatch, writing_only=True)
    barrier = threading.Barrier(2)
    outcomes = []

    def press() -> None:
        with app.test_request_context():
            barrier.wait()
            try:
                jobs.start_import(stored, expected)
                db.session.commit()
                outcomes.append("started")
            except jobs.JobRunning:
                db.session.rollback()
                outcomes.append("refused")

    presses = [threading.Thread(target=press) for _ in range(2)]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join(GATE_TIMEOUT)
    gate.open()
    finished(editor_client, url)

    assert sorted(outcomes) == ["refused", "started"]
    assert count_contacts(app) == 1


def claim_as_dead_worker(app, url: str, *, attempts_left: int) -> None:
    """Leave the upload's queued job as a worker killed while running it leaves it: claimed,
    its lease long expired, with `attempts_left` attempts to go."""
    with app.app_context():
        subject = uploads.subject_of(url.rsplit("/", 1)[1])
        job_id = db.session.scalar(
            sa.select(JobRow.id).where(JobRow.subject == subject, JobRow.status == "queued")
        )
        assert job_services.claim("elsewhere:4242:dead", [job_kind(app, job_id)]) == job_id
        db.session.execute(
            sa.update(JobRow)
            .where(JobRow.id == job_id)
            .values(
                heartbeat_at=utcnow() - timedelta(minutes=5),
                max_attempts=JobRow.attempts + attempts_left,
            )
        )
        db.session.commit()


def job_kind(app, job_id: int) -> str:
    return db.session.get(JobRow, job_id).kind


def test_an_import_whose_worker_died_is_taken_back_and_imports_once(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    start_commit(editor_client, url)
    claim_as_dead_worker(app, url, attempts_left=1)

    page = editor_client.get(url).get_data(as_text=True)
    assert "Importing contacts.csv" in page
    assert status(editor_client, url)["unresponsive"] is True

    assert finished(editor_client, url)["state"] == "done"
    assert "contacts.csv is imported" in editor_client.get(url).get_data(as_text=True)
    assert set(contacts_by_email(app)) == {"ana@example.org"}
    assert len(audit_entries(app, "contacts.imported")) == 1


def test_an_import_whose_worker_kept_dying_shows_interrupted_and_can_be_started_again(
    app, editor_client
):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    start_commit(editor_client, url)
    claim_as_dead_worker(app, url, attempts_left=0)
    run_jobs(app)

    page = editor_client.get(url).get_data(as_text=True)
    after = status(editor_client, url)

    assert (after["state"], after["finished"]) == ("interrupted", True)
    assert "The import was interrupted — nothing was imported." in page
    assert "Import again: add 1" in page
    commit(editor_client, url, page)
    assert set(contacts_by_email(app)) == {"ana@example.org"}


def test_a_check_whose_worker_kept_dying_can_be_started_again(app, editor_client):
    url = page_url(post_file(editor_client, csv_bytes([row("ana@example.org")])))
    claim_as_dead_worker(app, url, attempts_left=0)
    run_jobs(app)

    page = editor_client.get(url).get_data(as_text=True)
    assert "The check was interrupted" in page
    editor_client.post(url + "/check", data={"csrf_token": csrf_token(editor_client, url)})
    finished(editor_client, url)

    assert "<strong>1</strong> to add" in editor_client.get(url).get_data(as_text=True)


def test_pages_and_sign_ups_are_served_while_an_import_runs(
    app, editor_client, client, monkeypatch
):
    content = csv_bytes([row(f"p{number}@example.org") for number in range(3)])
    url = preview_url(upload(editor_client, content))
    gate = Gate(monkeypatch, writing_only=True)
    start_commit(editor_client, url)
    with worker(app):
        gate.wait_until_reached()
        try:
            directory = editor_client.get("/admin/contacts")
            signup = post_signup(client, app)
            if not TEST_DATABASE_URL:
                # Checking the rows holds no write lock: another connection can write at once.
                path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
                with sqlite3.connect(path, timeout=0, isolation_level=None) as probe:
                    probe.execute("BEGIN IMMEDIATE")
                    probe.execute("ROLLBACK")
                probe.close()
        finally:
            gate.open()
        finished(editor_client, url)

    assert directory.status_code == 200
    assert signup.status_code == 302, signup.get_data(as_text=True)
    with app.app_context():
        emails = set(db.session.scalars(sa.select(Contact.email)))
    # The sign-up added Umweltbundesamt, which was new to the import when it checked its rows.
    assert emails == {"zoe.mueller@example.org", *(f"p{number}@example.org" for number in range(3))}
    assert organisation_names(app) == ["Umweltbundesamt"]


def organisation_names(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Organisation.name)))


def test_an_upload_cannot_be_deleted_while_it_is_imported(app, editor_client, monkeypatch):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    gate = Gate(monkeypatch, writing_only=True)
    start_commit(editor_client, url)
    queued = editor_client.post(
        url + "/discard", data={"csrf_token": csrf_token(editor_client, "/admin/imports")}
    )
    with worker(app):
        gate.wait_until_reached()
        try:
            response = editor_client.post(
                url + "/discard", data={"csrf_token": csrf_token(editor_client, "/admin/imports")}
            )
        finally:
            gate.open()
        finished(editor_client, url)

    assert queued.headers["Location"] == url

    assert response.headers["Location"] == url
    assert "contacts.csv is imported" in editor_client.get(url).get_data(as_text=True)
