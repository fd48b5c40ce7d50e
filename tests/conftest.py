"""Shared fixtures: a fresh app and database per test, a real SMTP server, form helpers."""

import email
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import email_validator
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts import create_app
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.cli import seed_topics
from jeg_contacts.extensions import db
from jeg_contacts.jobs.runner import JobRunner

_ENVIRONMENT = (
    "DATABASE_URL",
    "SECRET_KEY",
    "JEG_ENV",
    "BASE_URL",
    "MAIL_FROM",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_SECURITY",
    "SMTP_CA_FILE",
    "SMTP_ALLOW_PLAINTEXT_AUTH",
    "SMTP_MAX_PER_CONNECTION",
    "OUTBOX_DIR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the settings they set themselves."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    # Staff accounts in tests use the reserved .test domain, which email-validator accepts
    # only in its test mode.
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", True)


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def database_config(tmp_path: Path) -> dict[str, object]:
    """SQLite in the test's folder, or a schema of its own on TEST_DATABASE_URL (PostgreSQL)."""
    if not TEST_DATABASE_URL:
        return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}"}
    schema = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(TEST_DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    _schemas.append(schema)
    return {
        "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL,
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-c search_path={schema}"}},
    }


_schemas: list[str] = []
_apps: list[Flask] = []


@pytest.fixture(autouse=True)
def release_databases() -> Iterator[None]:
    """Close every app's connections after each test, then drop its PostgreSQL schema."""
    yield
    while _apps:
        with _apps.pop().app_context():
            db.session.remove()
            db.engine.dispose()
    if _schemas:
        engine = sa.create_engine(TEST_DATABASE_URL)
        with engine.begin() as connection:
            for schema in _schemas:
                connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
        _schemas.clear()


def make_app(tmp_path: Path, **overrides: object) -> Flask:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        **database_config(tmp_path),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "BASE_URL": "http://jeg.test",
        "MAIL_FROM": "JEG secretariat <jeg@unece.test>",
    }
    config.update(overrides)
    app = create_app(config)
    _apps.append(app)
    with app.app_context():
        db.create_all()
        seed_topics()
        db.session.commit()
    return app


def run_jobs(app: Flask) -> int:
    """Run the queued background jobs that are due, as `flask worker` does; how many ran."""
    return JobRunner(app, poll_seconds=0.05).run_until_idle()


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_app(tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


class RecordingHandler:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._received = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._received:
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.messages.append(
                email.message_from_bytes(envelope.original_content, policy=policy.default)
            )
            self._received.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._received:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")
                self._received.wait(remaining)
        return list(self.messages)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, int]]:
    """A real SMTP server on a free loopback port."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def smtp_app(tmp_path: Path, smtp_server: tuple[RecordingHandler, int]) -> Flask:
    """An app whose mail goes to the test SMTP server instead of the outbox."""
    _handler, port = smtp_server
    return make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")


def outbox_messages(app: Flask) -> list[EmailMessage]:
    """Messages in the app's Maildir outbox, oldest first."""
    outbox = Path(app.config["OUTBOX_DIR"])
    files = sorted(
        (path for folder in ("new", "cur") for path in (outbox / folder).glob("*")),
        key=lambda path: path.stat().st_mtime_ns,
    )
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in files]


def text_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message: EmailMessage, path: str) -> str:
    """The first link in the text part whose path starts with `path`, as a relative URL."""
    match = re.search(rf"http://jeg\.test({re.escape(path)}[^\s\"<]+)", text_body(message))
    assert match, f"no {path} link in:\n{text_body(message)}"
    return match.group(1)


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on the page at `url` (also sets the session cookie)."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'type="hidden" name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def topic_ids(app: Flask, *slugs: str) -> list[int]:
    from jeg_contacts.contacts.models import Topic

    with app.app_context():
        topics = db.session.scalars(db.select(Topic).where(Topic.slug.in_(slugs))).all()
        return [topic.id for topic in topics]


def signup_form(app: Flask, **overrides: object) -> dict[str, object]:
    """A valid sign-up form body; override any field."""
    form: dict[str, object] = {
        "organisation_name": "Umweltbundesamt",
        "stakeholder_type": "national_authority",
        "organisation_country": "DE",
        "organisation_website": "https://www.umweltbundesamt.de",
        "salutation": "ms",
        "given_name": "Zoë",
        "family_name": "Müller",
        "job_title": "Head of industrial safety",
        "email": "zoe.mueller@example.org",
        "phone": "+49 340 2103 0",
        "country": "DE",
        "language": "en",
        "topics": [str(i) for i in topic_ids(app, "pipelines", "response-exercises")],
        "consent": "y",
    }
    form.update(overrides)
    return form


def post_signup(client: FlaskClient, app: Flask, **overrides: object):
    data = signup_form(app, **overrides)
    data["csrf_token"] = csrf_token(client, "/signup")
    return client.post("/signup", data=data)


STAFF_PASSWORD = "correct horse battery staple"


def create_staff(app: Flask, email: str, role: str) -> int:
    """A staff account with STAFF_PASSWORD; returns its id."""
    from jeg_contacts.auth.models import Role
    from jeg_contacts.auth.services import create_user

    with app.app_context():
        user = create_user(email, STAFF_PASSWORD, Role(role))
        db.session.commit()
        return user.id


def log_in(client: FlaskClient, email: str, password: str = STAFF_PASSWORD):
    token = csrf_token(client, "/admin/login")
    return client.post(
        "/admin/login", data={"csrf_token": token, "email": email, "password": password}
    )


def staff_client(app: Flask, role: str) -> FlaskClient:
    """A test client logged in as a new staff member with `role`."""
    email = f"{role}@unece.test"
    create_staff(app, email, role)
    client = app.test_client()
    response = log_in(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    return staff_client(app, "admin")


@pytest.fixture
def editor_client(app: Flask) -> FlaskClient:
    return staff_client(app, "editor")


@pytest.fixture
def viewer_client(app: Flask) -> FlaskClient:
    return staff_client(app, "viewer")


def subprocess_environment(app: Flask, **extra: str) -> dict[str, str]:
    """Environment for a `flask --app wsgi ...` child process using `app`'s database."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {})
    if "options" in options:
        url += ("&" if "?" in url else "?") + urlencode({"options": options["options"]})
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in _ENVIRONMENT and not key.startswith("FLASK_")
    }
    environment.update(
        DATABASE_URL=url,
        SECRET_KEY=app.config["SECRET_KEY"],
        BASE_URL=app.config["BASE_URL"],
        MAIL_FROM=app.config["MAIL_FROM"],
        OUTBOX_DIR=app.config["OUTBOX_DIR"],
        INSTANCE_PATH=str(Path(app.instance_path)),
        **extra,
    )
    return environment


def audit_entries(app: Flask, action: str) -> list[AuditEntry]:
    """The audit log's entries for `action`, oldest first, usable outside the app context."""
    with app.app_context():
        entries = list(
            db.session.scalars(
                sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )
        db.session.expunge_all()
        return entries


@pytest.fixture
def people(app: Flask) -> dict[str, int]:
    """A small, varied directory: names in several scripts, and every status but erased
    (exports and imports both start from it)."""
    from tests.directory.conftest import make_contact

    return {
        "zoe": make_contact(
            app,
            given_name="Zoë",
            family_name="Müller",
            email="zoe@example.org",
            organisation="Umweltbundesamt",
            organisation_country="DE",
            topics=("pipelines", "response-exercises"),
        ),
        "olga": make_contact(
            app,
            given_name="Ольга",
            family_name="Иванова",
            email="olga@example.ru",
            organisation="МЧС России",
            organisation_country="RU",
            language="ru",
            topics=("tailings-management-facilities",),
        ),
        "jean": make_contact(
            app,
            given_name="Jean",
            family_name="Dupont, fils",
            email="jean@example.fr",
            organisation="Ministère de la Transition écologique",
            organisation_country="FR",
            language="fr",
            status="unsubscribed",
        ),
        "erased": make_contact(app, email="gone@example.org", status="erased"),
    }


@pytest.fixture
def subscriber_token(app, client) -> str:
    """The preference/unsubscribe token of a subscriber who signed up and confirmed."""
    from jeg_contacts.contacts.links import manage_token
    from jeg_contacts.contacts.models import Contact

    post_signup(client, app)
    confirm_path = link_in(outbox_messages(app)[-1], "/confirm/")
    client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    with app.app_context():
        return manage_token(db.session.scalar(sa.select(Contact)))


def only_contact(app):
    """The one contact stored, with its topics and consent log loaded, detached."""
    from jeg_contacts.contacts.models import Contact

    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        _ = contact.topics, contact.consent_events
        db.session.expunge_all()
        return contact


# -- a real browser -----------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google services that this network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# One for the whole run, shared by tests/browser and tests/e2e: Playwright's sync API allows only
# one running instance per thread.
@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


# -- a real relay ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postfix_instance():
    """A private Debian Postfix relaying to a capture server (tests/peers/postfix.py): one for
    the whole run, shared by tests/postfix and tests/e2e (it takes about 3 s to start)."""
    from tests.peers.postfix import CaptureServer, PostfixRelay, unavailable

    reason = unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to run the private Postfix: {reason}")
        pytest.skip(reason)
    capture = CaptureServer()
    capture.start()
    relay = None
    try:
        relay = PostfixRelay(capture)
        relay.start()
        yield relay
    finally:
        if relay is not None:
            relay.stop()
        capture.stop()


@pytest.fixture
def postfix(postfix_instance):
    """The relay, with nothing left in its queue from earlier tests and a capture of its own."""
    postfix_instance.wait_until_idle()
    postfix_instance.capture.reset()
    return postfix_instance
