"""LOG_FORMAT=json: one JSON object per line, a line per request with its id, staff id, route,
method, status and duration, and never a token, password, address or message body."""

import json
import logging
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from tests.conftest import (
    STAFF_PASSWORD,
    create_staff,
    csrf_token,
    link_in,
    log_in,
    make_app,
    outbox_messages,
    post_signup,
    subprocess_environment,
    text_body,
)
from tests.mailing.conftest import FLASK, ROOT, add_contacts
from tests.mailing.test_worker import _announce


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """JSON logging reconfigures the process's loggers: put them back after each test."""
    root, werkzeug, ours = (
        logging.getLogger(),
        logging.getLogger("werkzeug"),
        logging.getLogger("jeg_contacts"),
    )
    state = (root.level, list(root.handlers), werkzeug.level, list(ours.handlers))
    yield
    root.setLevel(state[0])
    root.handlers[:] = state[1]
    werkzeug.setLevel(state[2])
    ours.handlers[:] = state[3]


@pytest.fixture
def json_app(tmp_path) -> Flask:
    return make_app(tmp_path, LOG_FORMAT="json")


def log_lines(captured: str) -> list[dict]:
    """Every line written, each of which must be one JSON object."""
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def requests_logged(captured: str) -> list[dict]:
    return [line for line in log_lines(captured) if line["logger"] == "jeg_contacts.requests"]


def test_each_request_is_one_json_line_with_its_id_route_status_and_duration(json_app, capsys):
    response = json_app.test_client().get("/privacy")

    [line] = requests_logged(capsys.readouterr().err)
    assert line["message"] == "request"
    assert line["method"] == "GET" and line["route"] == "/privacy" and line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert len(line["request_id"]) == 32
    assert "user" not in line  # nobody signed in
    assert line["level"] == "info" and line["time"].endswith("+00:00")


def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(json_app, capsys):
    client = json_app.test_client()
    kept = client.get("/", headers={"X-Request-ID": "nginx-7f3a9c.42"})
    replaced = client.get("/", headers={"X-Request-ID": 'x" forged=1 ' + "a" * 200})

    assert kept.headers["X-Request-ID"] == "nginx-7f3a9c.42"
    assert replaced.headers["X-Request-ID"] != 'x" forged=1 ' + "a" * 200
    assert len(replaced.headers["X-Request-ID"]) == 32
    first, second = requests_logged(capsys.readouterr().err)
    assert first["request_id"] == "nginx-7f3a9c.42"
    assert second["request_id"] == replaced.headers["X-Request-ID"]


def test_a_staff_request_names_the_staff_id_never_the_email(json_app, capsys):
    staff_id = create_staff(json_app, "editor@unece.test", "editor")
    client = json_app.test_client()
    log_in(client, "editor@unece.test")
    capsys.readouterr()

    client.get("/admin/contacts")

    captured = capsys.readouterr().err
    [line] = requests_logged(captured)
    assert line["user"] == staff_id
    assert line["route"] == "/admin/contacts"
    assert "editor@unece.test" not in captured


def test_the_log_of_real_requests_holds_no_secret(json_app, capsys):
    """Sign-up, the confirmation link, the preference link (with a query string), a login
    with a password and an unknown page: the log names routes, never what they carried."""
    client = json_app.test_client()
    post_signup(client, json_app, email="zoe.secret@example.org", given_name="Zoësecret")
    [confirmation] = outbox_messages(json_app)
    confirm_path = link_in(confirmation, "/confirm/")
    client.get(confirm_path)
    client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    with json_app.app_context():
        token = manage_token(db.session.scalar(sa.select(Contact)))
    client.get(f"/preferences/{token}?from=mail&token={token}")
    create_staff(json_app, "admin@unece.test", "admin")
    log_in(client, "admin@unece.test", STAFF_PASSWORD)
    log_in(json_app.test_client(), "admin@unece.test", "a wrong password, also secret")
    client.get(f"/no-such-page/{token}")

    captured = capsys.readouterr().err
    lines = requests_logged(captured)
    routes = {line["route"] for line in lines}
    assert {"/signup", "/confirm/<token>", "/preferences/<token>", "/admin/login"} <= routes
    assert None in routes  # the unknown page: no rule, and no path either
    assert {line["status"] for line in lines} >= {200, 302, 404}
    confirm_token = urlsplit(confirm_path).path.rsplit("/", 1)[-1]
    body_line = next(line for line in text_body(confirmation).splitlines() if len(line) > 20)
    for secret in (
        token,
        confirm_token,
        STAFF_PASSWORD,
        "a wrong password, also secret",
        "zoe.secret@example.org",
        "admin@unece.test",
        "Zoësecret",
        "from=mail",
        body_line,
    ):
        assert secret not in captured, f"{secret!r} is in the log"


def test_text_format_stays_the_default(tmp_path, capsys):
    app = make_app(tmp_path)
    response = app.test_client().get("/privacy")

    assert response.headers["X-Request-ID"]  # the id is always given back
    assert "jeg_contacts.requests" not in capsys.readouterr().err


def test_the_worker_logs_json_lines_too(tmp_path):
    app = make_app(tmp_path)
    add_contacts(app, ["person1@example.org", "person2@example.org"])
    _announce(app)

    done = subprocess.run(
        [FLASK, "--app", "wsgi", "worker", "--until-idle"],
        cwd=ROOT,
        env=subprocess_environment(app, LOG_FORMAT="json"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    lines = log_lines(done.stderr + done.stdout)
    assert any(line["message"].startswith("Worker finished: sent 2") for line in lines)
    assert all(line["logger"] for line in lines)
    assert "person1@example.org" not in done.stderr + done.stdout


def test_an_error_is_logged_with_its_route_and_traceback_never_the_path_or_values(json_app, capsys):
    json_app.config["PROPAGATE_EXCEPTIONS"] = False  # as on a server: a 500 page, and a log

    @json_app.get("/failing/<token>")
    def failing(token: str) -> str:
        db.session.execute(sa.text("SELECT * FROM no_such_table WHERE x = :x"), {"x": token})
        return "unreachable"

    response = json_app.test_client().get("/failing/tok3n-s3cret")

    assert response.status_code == 500
    captured = capsys.readouterr().err
    [error] = [line for line in log_lines(captured) if line["level"] == "error"]
    assert error["message"] == "Exception on /failing/<token> [GET]"
    assert "no_such_table" in error["exception"]  # the traceback is there
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert "tok3n-s3cret" not in captured
