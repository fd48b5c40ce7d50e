"""Configuration that must fail closed: the links `make run` mails, weak secrets, SMTP
credentials in clear, and relays whose certificate only a private CA vouches for."""

import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask

from jeg_contacts import create_app
from jeg_contacts.config import ConfigurationError
from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.models import Delivery
from jeg_contacts.mailing.relay import sends_paused_by_relay
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import RecordingHandler, free_port, make_app, post_signup
from tests.mailing.conftest import add_contacts

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


# Stands in for .venv/bin/flask under `make run`: the worker and the server each note the
# confirmation link the app would mail, built by the real app from the environment that
# `make run` gave it; every other command just succeeds.
FAKE_FLASK = """#!{python}
import json, os, sys, time
from pathlib import Path

record = Path(os.environ["FAKE_FLASK_RECORD"])
command = [arg for arg in sys.argv[1:] if arg not in ("--app", "wsgi")]
if command[0] in ("worker", "run"):
    from jeg_contacts import create_app
    from jeg_contacts.mailer import external_url

    with create_app().app_context():
        link = external_url("signup.confirm", token="TOKEN")
    note = {{"command": command, "link": link}}
    (record / command[0]).write_text(json.dumps(note))
    if command[0] == "run":  # the server: stay up until the worker has had its say
        deadline = time.monotonic() + 30
        while not (record / "worker").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""


def make_run(tmp_path: Path, *arguments: str, **environment: str) -> dict[str, dict]:
    """Run the Makefile's `run` target with a stand-in flask; what the worker and server saw."""
    venv, record = tmp_path / "venv", tmp_path / "record"
    (venv / "bin").mkdir(parents=True)
    record.mkdir()
    flask = venv / "bin" / "flask"
    flask.write_text(FAKE_FLASK.format(python=sys.executable))
    flask.chmod(0o755)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / ".installed-app").touch()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BASE_URL", "HOST", "PORT", "MAKEFLAGS", "MAKELEVEL")
    }
    env.update(FAKE_FLASK_RECORD=str(record), INSTANCE_PATH=str(tmp_path / "instance"))
    env.update(environment)
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "run", f"VENV={venv}", *arguments],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {name: json.loads((record / name).read_text()) for name in ("worker", "run")}


def test_make_run_on_another_port_mails_links_to_that_port(tmp_path: Path) -> None:
    seen = make_run(tmp_path, "DEMO_DATA=0", "PORT=5077")

    assert seen["run"]["command"][-2:] == ["--port", "5077"]
    for process in ("worker", "run"):
        assert seen[process]["link"] == "http://127.0.0.1:5077/confirm/TOKEN"


def test_make_run_keeps_an_explicit_base_url(tmp_path: Path) -> None:
    seen = make_run(tmp_path, "DEMO_DATA=0", PORT="5077", BASE_URL="https://contacts.jeg.example")

    assert seen["run"]["command"][-2:] == ["--port", "5077"]
    for process in ("worker", "run"):
        assert seen[process]["link"] == "https://contacts.jeg.example/confirm/TOKEN"


# -- production secrets ----------------------------------------------------------------------


def test_production_with_a_short_secret_key_refuses_to_start_from_the_command_line(
    tmp_path: Path,
) -> None:
    """An operator who sets SECRET_KEY=changeme gets a clear refusal, not a forgeable app."""
    weak = "changeme-but-only-31-characters"
    assert len(weak) == 31
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMTP_", "FLASK_")) and key not in ("DATABASE_URL", "BASE_URL")
    }
    environment.update(
        JEG_ENV="production", SECRET_KEY=weak, INSTANCE_PATH=str(tmp_path / "instance")
    )

    result = subprocess.run(
        [FLASK, "--app", "wsgi", "seed"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "SECRET_KEY must be at least 32 characters" in output
    assert weak not in output  # the refusal does not print the secret
    assert not (tmp_path / "instance" / "jeg_contacts.db").exists()


def test_production_accepts_a_secret_key_of_32_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JEG_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 32)

    assert create_app().config["SECRET_KEY"] == "k" * 32


# -- SMTP credentials in clear ---------------------------------------------------------------


def test_smtp_credentials_without_encryption_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_HOST", "relay.example.org")
    monkeypatch.setenv("SMTP_USERNAME", "jeg")
    monkeypatch.setenv("SMTP_PASSWORD", "relay password")

    with pytest.raises(ConfigurationError, match="SMTP_ALLOW_PLAINTEXT_AUTH=1") as refusal:
        create_app()
    assert "relay password" not in str(refusal.value)


def test_smtp_credentials_without_encryption_start_only_when_explicitly_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_HOST", "relay.example.org")
    monkeypatch.setenv("SMTP_USERNAME", "jeg")
    monkeypatch.setenv("SMTP_ALLOW_PLAINTEXT_AUTH", "1")

    assert create_app().config["SMTP_ALLOW_PLAINTEXT_AUTH"] is True


class CredentialsRecorder:
    """aiosmtpd authenticator that accepts any login and keeps what it was sent."""

    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)


@dataclass
class Relay:
    handler: RecordingHandler
    credentials: CredentialsRecorder
    port: int
    security: str = "none"


@pytest.fixture
def plaintext_relay() -> Iterator[Relay]:
    """A relay that offers AUTH without TLS, as a careless or hostile one might."""
    relay = Relay(RecordingHandler(), CredentialsRecorder(), free_port())
    controller = Controller(
        relay.handler,
        hostname="127.0.0.1",
        port=relay.port,
        authenticator=relay.credentials,
        auth_require_tls=False,
    )
    controller.start()
    yield relay
    controller.stop()


def app_with_plaintext_credentials(tmp_path: Path, port: int) -> Flask:
    """Settings that bypass the start-up check (as a test or embedding config can): the
    transport must still refuse."""
    return make_app(
        tmp_path,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_SECURITY="none",
        SMTP_USERNAME="jeg",
        SMTP_PASSWORD="relay password",
        SMTP_TIMEOUT=5,
        DELIVERY_MAX_ATTEMPTS=1,
    )


def test_sign_up_mail_never_sends_credentials_over_plaintext(
    tmp_path: Path, plaintext_relay: Relay
) -> None:
    app = app_with_plaintext_credentials(tmp_path, plaintext_relay.port)

    post_signup(app.test_client(), app, email="zoe@example.org")

    assert plaintext_relay.credentials.logins == []
    assert plaintext_relay.handler.messages == []


def test_the_worker_never_sends_credentials_over_plaintext(
    tmp_path: Path, plaintext_relay: Relay
) -> None:
    app = app_with_plaintext_credentials(tmp_path, plaintext_relay.port)
    announcement_id = announce_to(app, "zoe@example.org")

    DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()

    assert plaintext_relay.credentials.logins == []
    assert plaintext_relay.handler.messages == []
    # A relay problem, not the recipient's: the send is paused and says why.
    assert [status for status, _reply in delivery_outcomes(app, announcement_id)] == ["queued"]
    with app.app_context():
        [paused] = sends_paused_by_relay()
    assert paused.reason == "plaintext_login_refused"
    assert "SMTP_ALLOW_PLAINTEXT_AUTH" in paused.detail


def announce_to(app: Flask, *emails: str) -> int:
    add_contacts(app, list(emails))
    with app.app_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en="Dear {{ given_name }}")
        )
        mailing.start_sending(announcement)
        db.session.commit()
        return announcement.id


def delivery_outcomes(app: Flask, announcement_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.status, Delivery.last_reply)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.announcement_id == announcement_id)
        ).all()
        return [(status.value, reply or "") for status, reply in rows]


# -- relays with a private CA ----------------------------------------------------------------


@dataclass
class PrivateCa:
    ca_file: Path
    relay_certificate: Path
    relay_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.relay_certificate, self.relay_key)
        return context


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    """A throwaway CA and a certificate it signed for the relay at 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test CA")
    folder = tmp_path_factory.mktemp("private-ca")

    def run(*arguments: str) -> None:
        subprocess.run([openssl, *arguments], cwd=folder, check=True, capture_output=True)

    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    run(
        "req", "-x509", *new_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=JEG test relay CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    run("req", *new_key, "-keyout", "relay.key", "-out", "relay.csr", "-subj", "/CN=127.0.0.1")
    (folder / "relay.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run(
        "x509", "-req", "-in", "relay.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "relay.pem", "-extfile", "relay.ext",
    )  # fmt: skip
    return PrivateCa(folder / "ca.pem", folder / "relay.pem", folder / "relay.key")


@pytest.fixture(params=["starttls", "tls"])
def tls_relay(request: pytest.FixtureRequest, private_ca: PrivateCa) -> Iterator[Relay]:
    """A relay with a certificate from the private CA: STARTTLS required before anything
    else (port 587 style), or TLS from the first byte (port 465 style). AUTH only over TLS."""
    relay = Relay(RecordingHandler(), CredentialsRecorder(), free_port(), request.param)
    options: dict[str, object] = (
        {"tls_context": private_ca.server_context(), "require_starttls": True}
        if request.param == "starttls"
        # aiosmtpd only knows of TLS it negotiated itself: told here that AUTH is safe.
        else {"ssl_context": private_ca.server_context(), "auth_require_tls": False}
    )
    controller = Controller(
        relay.handler,
        hostname="127.0.0.1",
        port=relay.port,
        authenticator=relay.credentials,
        **options,
    )
    controller.start()
    yield relay
    controller.stop()


def use_relay(monkeypatch: pytest.MonkeyPatch, relay: Relay, **settings: str) -> None:
    """Configure the relay through the environment, as an operator would."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(relay.port))
    monkeypatch.setenv("SMTP_SECURITY", relay.security)
    monkeypatch.setenv("SMTP_USERNAME", "jeg")
    monkeypatch.setenv("SMTP_PASSWORD", "relay password")
    monkeypatch.setenv("SMTP_TIMEOUT", "5")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def test_a_relay_signed_by_an_unknown_ca_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_relay: Relay, caplog
) -> None:
    use_relay(monkeypatch, tls_relay)
    app = make_app(tmp_path)

    post_signup(app.test_client(), app, email="zoe@example.org")

    assert tls_relay.handler.messages == []
    assert tls_relay.credentials.logins == []
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_smtp_ca_file_lets_sign_up_mail_reach_a_relay_with_a_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_relay: Relay, private_ca: PrivateCa
) -> None:
    use_relay(monkeypatch, tls_relay, SMTP_CA_FILE=str(private_ca.ca_file))
    app = make_app(tmp_path)

    post_signup(app.test_client(), app, email="zoe@example.org")

    [message] = tls_relay.handler.wait_for(1)
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert tls_relay.credentials.logins == [(b"jeg", b"relay password")]


def test_smtp_ca_file_lets_the_worker_reach_a_relay_with_a_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_relay: Relay, private_ca: PrivateCa
) -> None:
    use_relay(monkeypatch, tls_relay, SMTP_CA_FILE=str(private_ca.ca_file))
    app = make_app(tmp_path, DELIVERY_MAX_ATTEMPTS=1)
    announcement_id = announce_to(app, "a@example.org", "b@example.org")

    DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()

    assert [status for status, _reply in delivery_outcomes(app, announcement_id)] == ["sent"] * 2
    assert len(tls_relay.handler.messages) == 2
    assert tls_relay.credentials.logins == [(b"jeg", b"relay password")]


def test_smtp_ca_file_that_cannot_be_read_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_SECURITY", "starttls")
    monkeypatch.setenv("SMTP_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="SMTP_CA_FILE"):
        create_app()

    not_a_certificate = tmp_path / "notes.pem"
    not_a_certificate.write_text("not a certificate\n")
    monkeypatch.setenv("SMTP_CA_FILE", str(not_a_certificate))
    with pytest.raises(ConfigurationError, match="SMTP_CA_FILE"):
        create_app()


def test_smtp_ca_file_without_tls_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, private_ca: PrivateCa
) -> None:
    """A CA file with SMTP_SECURITY=none would verify nothing: the operator meant TLS."""
    monkeypatch.setenv("SMTP_HOST", "relay.example.org")
    monkeypatch.setenv("SMTP_CA_FILE", str(private_ca.ca_file))

    with pytest.raises(ConfigurationError, match="SMTP_SECURITY"):
        create_app()


# -- the sender of every message -------------------------------------------------------------


@pytest.mark.parametrize(
    "mail_from", ["JEG secretariat jeg@unece.test>", "JEG secretariat, jeg@unece.test", "jeg"]
)
def test_a_mail_from_that_no_message_could_carry_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, mail_from: str
) -> None:
    """Otherwise every sign-up would be refused (or every mail lost) until someone noticed."""
    monkeypatch.setenv("MAIL_FROM", mail_from)

    with pytest.raises(ConfigurationError, match="MAIL_FROM"):
        create_app()
