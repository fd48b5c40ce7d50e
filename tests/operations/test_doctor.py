"""`flask doctor`: each check passing and failing, through the command line, against a real
database, a real HTTP server for BASE_URL and a real TLS relay that checks its login."""

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing.models import Worker
from jeg_contacts.mailing.queue import DeliveryQueue
from jeg_contacts.operations import doctor
from tests.conftest import free_port, make_app
from tests.operations.conftest import (
    PrivateCa,
    TlsRelay,
    relay_settings,
    serving,
    stamp,
)

STRONG_KEY = "Xq3v9L-2mZpT8rWkYb4NcE7hJ6uAsDfG1oRiKlMn"


def run_doctor(app: Flask, *arguments: str):
    return app.test_cli_runner().invoke(args=["doctor", *arguments])


def lines(result, topic: str) -> list[str]:
    return [line for line in result.output.splitlines() if f" {topic}:" in line]


def level(result, topic: str) -> str:
    found = lines(result, topic)
    assert found, f"no {topic} line in:\n{result.output}"
    return found[0].split()[0]


def start_worker_heartbeat(app: Flask, age: timedelta = timedelta(0)) -> None:
    """Register a worker as `flask worker` does, its last heartbeat `age` ago."""
    with app.app_context():
        queue = DeliveryQueue(app)
        queue.register()
        db.session.flush()
        db.session.execute(
            sa.update(Worker)
            .where(Worker.id == queue.worker_id)
            .values(heartbeat_at=utcnow() - age, started_at=utcnow() - age)
        )
        db.session.commit()


@pytest.fixture
def server_app(tmp_path: Path, starttls_relay: TlsRelay, private_ca: PrivateCa, monkeypatch):
    """A production app as a server runs it: https BASE_URL served by the app itself, a TLS
    relay with a login, the migrations recorded, a worker alive."""

    def build(**changes: object) -> Flask:
        settings = {
            "JEG_ENV": "production",
            "SECRET_KEY": STRONG_KEY,
            **relay_settings(starttls_relay, private_ca),
        }
        settings.update(changes)
        app = make_app(tmp_path, **settings)
        stamp(app)
        start_worker_heartbeat(app)
        return app

    # urllib trusts the private CA the way an operator would make it: SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(private_ca.ca_file))
    return build


def test_doctor_passes_on_a_production_server(server_app, private_ca):
    app = server_app()
    with serving(app, private_ca.server_context()) as base_url:
        app.config["BASE_URL"] = base_url
        result = run_doctor(app)

    assert result.exit_code == 0, result.output
    for topic in ("mode", "secret key", "BASE_URL", "database", "migrations", "relay", "worker"):
        assert level(result, topic) == "OK", result.output
    assert all(line.startswith("OK ") for line in result.output.splitlines()[:-1])
    assert "STARTTLS, logged in as jeg" in lines(result, "relay")[0]
    assert "bounce mailbox: not configured" in result.output
    assert result.output.splitlines()[-1].startswith("No problem")


def test_doctor_with_to_sends_a_real_test_message_through_the_relay(
    server_app, private_ca, starttls_relay
):
    app = server_app()
    with serving(app, private_ca.server_context()) as base_url:
        app.config["BASE_URL"] = base_url
        result = run_doctor(app, "--to", "it@unece.test")

    assert result.exit_code == 0, result.output
    [message] = starttls_relay.handler.wait_for(1)
    assert message["To"].addresses[0].addr_spec == "it@unece.test"
    assert "flask doctor" in message["Subject"]
    assert level(result, "test message") == "OK"


def test_doctor_refuses_a_test_address_that_is_not_one(server_app):
    result = run_doctor(server_app(), "--to", "not an address")
    assert result.exit_code == 2
    assert "--to" in result.output


def test_weak_secret_key_and_plain_http_base_url_are_problems_in_production(server_app):
    app = server_app(SECRET_KEY="changeme" * 5, BASE_URL="http://127.0.0.1:9")
    result = run_doctor(app)

    assert result.exit_code == 1
    assert level(result, "secret key") == "PROBLEM"
    assert "repeats a few characters" in lines(result, "secret key")[0]
    assert "token_urlsafe" in lines(result, "secret key")[0]
    assert lines(result, "BASE_URL")[0].startswith("PROBLEM")
    assert "is not https" in lines(result, "BASE_URL")[0]


def test_development_mode_is_a_warning_not_a_problem(tmp_path):
    app = make_app(tmp_path, SECRET_KEY=STRONG_KEY)
    stamp(app)
    start_worker_heartbeat(app)
    with serving(app) as base_url:
        app.config["BASE_URL"] = base_url
        result = run_doctor(app)

    assert result.exit_code == 0, result.output
    assert level(result, "mode") == "WARNING"
    assert "JEG_ENV=production" in lines(result, "mode")[0]
    assert level(result, "relay") == "OK"  # the Maildir outbox, as development uses it
    assert "outbox" in lines(result, "relay")[0]


def test_a_server_sending_to_the_outbox_only_passes_with_a_warning(server_app, private_ca):
    app = server_app(SMTP_HOST="")
    with serving(app, private_ca.server_context()) as base_url:
        app.config["BASE_URL"] = base_url
        result = run_doctor(app)

    assert result.exit_code == 0, result.output
    assert level(result, "relay") == "WARNING"
    assert "nobody receives it" in lines(result, "relay")[0]


def test_base_url_that_nothing_answers_is_a_problem(server_app):
    app = server_app(BASE_URL=f"https://127.0.0.1:{free_port()}")
    result = run_doctor(app)

    assert result.exit_code == 1
    [reachability] = [line for line in lines(result, "BASE_URL") if "/healthz" in line]
    assert reachability.startswith("PROBLEM")
    assert "could not be opened from this server" in reachability


def test_base_url_answered_by_something_else_is_a_problem(server_app, tmp_path):
    other = Flask("other")  # a proxy forwarding to the wrong place: a 404 for /healthz
    with serving(other) as base_url:
        app = server_app(BASE_URL=base_url)
        result = run_doctor(app)

    assert result.exit_code == 1
    assert "answered 404" in result.output


def test_a_database_that_cannot_be_reached_is_a_problem(server_app, tmp_path):
    result = run_doctor(make_app_unreachable(server_app(), tmp_path))

    assert result.exit_code == 1
    assert level(result, "database") == "PROBLEM"
    assert "cannot be reached" in lines(result, "database")[0]
    assert "could not be checked" in lines(result, "worker")[0]


def make_app_unreachable(app: Flask, tmp_path: Path) -> Flask:
    """An app like `app` whose DATABASE_URL names a file in a folder that does not exist."""
    from jeg_contacts import create_app

    config = {
        key: app.config[key]
        for key in ("JEG_ENV", "SECRET_KEY", "BASE_URL", "SMTP_HOST", "OUTBOX_DIR")
    }
    config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'missing' / 'jeg.db'}"
    return create_app(config)


def test_migrations_not_recorded_behind_or_unknown_are_problems(tmp_path):
    app = make_app(tmp_path, SECRET_KEY=STRONG_KEY)
    result = run_doctor(app)
    assert level(result, "migrations") == "PROBLEM"
    assert "flask --app wsgi db upgrade" in lines(result, "migrations")[0]

    stamp(app, "heads")
    assert level(run_doctor(app), "migrations") == "OK"

    with app.app_context():
        script = ScriptDirectory(app.extensions["migrate"].directory)
        [head] = script.get_heads()
        previous = script.get_revision(head).down_revision
    stamp(app, previous)
    result = run_doctor(app)
    assert level(result, "migrations") == "PROBLEM"
    assert "behind" in lines(result, "migrations")[0]

    with app.app_context():
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
        db.session.commit()
    result = run_doctor(app)
    assert level(result, "migrations") == "PROBLEM"
    assert "newer version" in lines(result, "migrations")[0]


def test_relay_that_refuses_the_login_is_a_problem(server_app, starttls_relay):
    app = server_app(SMTP_PASSWORD="wrong password")
    result = run_doctor(app)

    assert result.exit_code == 1
    [relay] = lines(result, "relay")
    assert relay.startswith("PROBLEM")
    assert "refused the login of jeg (535" in relay
    assert "SMTP_PASSWORD" in relay


def test_relay_whose_certificate_is_not_trusted_is_a_problem(
    server_app, starttls_relay, monkeypatch
):
    monkeypatch.delenv("SSL_CERT_FILE")  # only the system's CAs, which never signed it
    app = server_app(SMTP_CA_FILE="")
    result = run_doctor(app)

    [relay] = lines(result, "relay")
    assert relay.startswith("PROBLEM")
    assert "not trusted" in relay and "SMTP_CA_FILE" in relay
    assert starttls_relay.authenticator.attempts == 0  # no password sent to it


def test_relay_that_does_not_answer_is_a_problem(server_app):
    app = server_app(SMTP_PORT=free_port())
    result = run_doctor(app, "--to", "it@unece.test")

    assert result.exit_code == 1
    assert lines(result, "relay")[0].startswith("PROBLEM")
    assert "cannot talk to 127.0.0.1" in lines(result, "relay")[0]
    assert level(result, "test message") == "PROBLEM"


def test_no_worker_or_a_silent_one_is_a_problem(tmp_path):
    app = make_app(tmp_path)
    stamp(app)
    result = run_doctor(app)
    assert level(result, "worker") == "PROBLEM"
    assert "no worker is running" in lines(result, "worker")[0]

    start_worker_heartbeat(app, age=timedelta(minutes=5))
    result = run_doctor(app)
    assert level(result, "worker") == "PROBLEM"
    assert "last seen 300 s ago" in lines(result, "worker")[0]

    start_worker_heartbeat(app)
    assert level(run_doctor(app), "worker") == "OK"


def test_low_free_disk_is_a_problem(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    assert level(run_doctor(app), "disk") == "OK"

    # A disk with less free space than the limit: the limit raised above what is free.
    monkeypatch.setattr(doctor, "DISK_PROBLEM_BYTES", 2**62)
    result = run_doctor(app)
    assert result.exit_code == 1
    assert level(result, "disk") == "PROBLEM"
    assert "free some space now" in lines(result, "disk")[0]


def test_a_send_paused_for_a_relay_problem_is_a_problem_until_resumed(tmp_path):
    from jeg_contacts.mailing.models import Announcement, AnnouncementStatus
    from jeg_contacts.mailing.relay import pause_for_relay_problem

    app = make_app(tmp_path)
    stamp(app)
    assert level(run_doctor(app), "paused sends") == "OK"
    with app.app_context():
        announcement = Announcement(
            subject_en="Workshop in Almaty", body_en="Hello", status=AnnouncementStatus.SENDING
        )
        db.session.add(announcement)
        db.session.flush()
        pause_for_relay_problem(announcement.id, "login_refused", "535 5.7.8 Authentication failed")
        db.session.commit()

    result = run_doctor(app)

    assert result.exit_code == 1
    [line] = lines(result, "paused sends")
    assert line.startswith("PROBLEM") and "“Workshop in Almaty”" in line
    assert "refused this application's login" in line and "535 5.7.8" in line
