"""Imports are the worker's jobs, not the web server's: an import goes on while the web server
stops and starts again, and an import whose worker is killed is taken back and imports once.
Real processes: `flask run` and `flask worker`, stopped with signals."""

import http.cookiejar
import io
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from jeg_contacts.extensions import db
from jeg_contacts.jobs.models import Job, JobStatus
from tests.conftest import (
    STAFF_PASSWORD,
    audit_entries,
    create_staff,
    free_port,
    run_jobs,
    subprocess_environment,
)
from tests.imports.conftest import count_contacts, csv_bytes, row
from tests.imports.web_import import commit_form, preview_url, settings, start_commit, upload

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
TIMEOUT = 60


class Browser:
    """A client of a real web server at `base`, keeping its cookies (so its login) across
    server restarts."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        no_redirects = type(
            "NoRedirects", (urllib.request.HTTPRedirectHandler,), {"redirect_request": _none}
        )
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), no_redirects
        )
        self.base = ""

    def request(self, path: str, data: bytes | None = None, content_type: str = "") -> tuple:
        request = urllib.request.Request(self.base + path, data=data)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def form(self, path: str, fields: dict, files: dict | None = None) -> tuple:
        boundary, body = encode_multipart({**fields, **(files or {})})
        return self.request(path, body, f"multipart/form-data; boundary={boundary}")

    def csrf(self, path: str) -> str:
        _status, _headers, page = self.request(path)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


def _none(*_args, **_kwargs) -> None:
    return None


def start(app, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [FLASK, "--app", "wsgi", *arguments],
        cwd=ROOT,
        env=subprocess_environment(app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_web_server(app, browser: Browser) -> subprocess.Popen:
    port = free_port()
    server = start(app, "run", "--port", str(port), "--no-reload", "--no-debugger")
    browser.base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            browser.request("/")
            return server
        except OSError:
            assert server.poll() is None, "the web server did not start"
            assert time.monotonic() < deadline, "the web server did not answer"
            time.sleep(0.1)


def stop(process: subprocess.Popen, sig: signal.Signals = signal.SIGKILL) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    process.wait(TIMEOUT)


def test_an_import_finishes_with_the_web_server_stopped_and_started_again(app):
    create_staff(app, "editor@unece.test", "editor")
    browser = Browser()
    server = start_web_server(app, browser)
    worker = None
    try:
        token = browser.csrf("/admin/login")
        fields = {"csrf_token": token, "email": "editor@unece.test", "password": STAFF_PASSWORD}
        assert browser.form("/admin/login", fields)[0] == 302
        content = csv_bytes([row(f"p{number}@example.org") for number in range(300)])
        fields = {"csrf_token": browser.csrf("/admin/imports")}
        fields |= {"encoding": "auto", "delimiter": "auto"}
        files = {"file": FileStorage(io.BytesIO(content), filename="contacts.csv")}
        status, headers, _page = browser.form("/admin/imports", fields, files)
        assert status == 302
        url = headers["Location"].split("#")[0].removeprefix(browser.base)
        run_jobs(app)  # the check, which the preview shows
        action, fields = commit_form(browser.request(url)[2])
        assert browser.form(action, fields)[0] == 302  # the import is queued

        stop(server)  # the web server dies with the import queued, before it ran
        worker = start(app, "worker", "--quiet")
        server = start_web_server(app, browser)
        deadline = time.monotonic() + TIMEOUT
        while not (state := _status(browser, url))["finished"]:
            assert time.monotonic() < deadline, state
            time.sleep(0.2)

        assert state["state"] == "done"
        status, _headers, page = browser.request(url)
        assert status == 200 and "contacts.csv is imported" in page
    finally:
        stop(server)
        if worker is not None:
            stop(worker, signal.SIGTERM)
    assert count_contacts(app) == 300
    assert len(audit_entries(app, "contacts.imported")) == 1


def _status(browser: Browser, url: str) -> dict:
    status, _headers, body = browser.request(f"{url}/status")
    assert status == 200, body
    return json.loads(body)


def test_an_import_whose_worker_is_killed_is_taken_back_and_imports_once(app, editor_client):
    rows = 20_000
    content = csv_bytes([row(f"p{number}@example.org") for number in range(rows)])
    url = preview_url(upload(editor_client, content))
    settings(editor_client, url)  # active, with the reason they agreed: no emails
    start_commit(editor_client, url)

    worker = start(app, "worker", "--quiet")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (job := _import_job(app)) or not job.progress_done:
            assert worker.poll() is None and time.monotonic() < deadline, job
            time.sleep(0.05)
    finally:
        stop(worker)  # SIGKILL: no goodbye, the job stays claimed by a dead process

    killed = _import_job(app)
    assert killed.status is JobStatus.RUNNING and killed.attempts == 1
    assert count_contacts(app) == 0  # its writes are one transaction with its completion

    run_jobs(app)  # a worker starting on this host takes the dead process's job back

    job = _import_job(app)
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)
    assert job.result["imported"]["create"] == rows
    assert count_contacts(app) == rows
    assert len(audit_entries(app, "contacts.imported")) == 1


def _import_job(app) -> Job | None:
    with app.app_context():
        job = db.session.scalar(sa.select(Job).where(Job.kind == "imports.commit"))
        if job is not None:
            db.session.expunge(job)
        return job
