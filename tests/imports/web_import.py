"""Driving the back-office import as a browser does: upload, follow the background check or
import until it is over (polling its status like the progress page), press the buttons."""

import io
import re
import time

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from jeg_contacts.extensions import db
from jeg_contacts.jobs.models import Job
from tests.conftest import csrf_token, run_jobs
from tests.imports.conftest import BASIS

JOB_TIMEOUT = 30.0


def post_file(client: FlaskClient, content: bytes, name: str = "contacts.csv", **fields):
    """Send the upload form, without waiting for the check it starts."""
    token = csrf_token(client, "/admin/imports")
    data = {"csrf_token": token, "encoding": "auto", "delimiter": "auto", **fields}
    data["file"] = FileStorage(io.BytesIO(content), filename=name)
    # Encoded here, in memory: the test client would spool a big body to a temporary file
    # that it never closes.
    boundary, body = encode_multipart(data)
    return client.post(
        "/admin/imports", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def page_url(response: TestResponse) -> str:
    """The upload's page a response redirects to, without its #fragment."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].split("#")[0]


def status(client: FlaskClient, url: str) -> dict:
    response = client.get(f"{url}/status")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def finished(client: FlaskClient, url: str, timeout: float = JOB_TIMEOUT) -> dict:
    """Run the worker's jobs, polling the upload's status until its check or import is over
    (a runner in another thread may hold it); its last status."""
    deadline = time.monotonic() + timeout
    while not (current := status(client, url))["finished"]:
        assert time.monotonic() < deadline, f"still running after {timeout} s: {current}"
        if not run_jobs(client.application):
            time.sleep(0.02)
    return current


def job_results(app: Flask, upload: str) -> list[dict]:
    """The results kept in the rows of an upload's jobs (previews and import results);
    `upload` is its token or its page's URL."""
    token = upload.rsplit("/", 1)[-1]
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Job.result).where(Job.subject == f"upload:{token}").order_by(Job.id)
            )
        )


def upload(client: FlaskClient, content: bytes, name: str = "contacts.csv", **fields):
    """Upload a file and wait for its check; the upload form's response."""
    response = post_file(client, content, name, **fields)
    if response.status_code == 302:
        finished(client, page_url(response))
    return response


def preview_url(response: TestResponse) -> str:
    return page_url(response)


def commit_form(page: str) -> tuple[str, dict[str, str]]:
    form = re.search(r'<form method="post" action="([^"]+/commit)".*?</form>', page, re.S)
    assert form, page
    fields = dict(re.findall(r'name="([a-z_]+)" type="hidden" value="([^"]*)"', form.group(0)))
    return form.group(1), fields


def start_commit(client: FlaskClient, url: str, page: str | None = None):
    """Press the import button of the preview at `url` (or of an earlier copy of it)."""
    action, fields = commit_form(page or client.get(url).get_data(as_text=True))
    return client.post(action, data=fields)


def commit(client: FlaskClient, url: str, page: str | None = None):
    """Press the import button and wait for the import to be over."""
    response = start_commit(client, url, page)
    finished(client, url)
    return response


def settings(client: FlaskClient, url: str, **changes):
    """Send the settings form with `changes`, and wait for the check it starts."""
    page = client.get(url).get_data(as_text=True)
    data = {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]}
    chosen = r'<select id="(column-\d+)" name="column-\d+">.*?<option value="([a-z_]*)" selected>'
    data |= dict(re.findall(chosen, page, re.S))
    data |= {"encoding": "auto", "delimiter": "auto", "existing": "skip"}
    data |= {"status": "active", "basis": BASIS}
    data |= {"default_language": "en", "default_type": ""}
    data |= changes
    response = client.post(url, data=data)
    finished(client, url)
    return response
