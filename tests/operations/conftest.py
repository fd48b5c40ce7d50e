"""Fixtures for operating the app: a real HTTP server for BASE_URL, a TLS relay that checks
its login, an alembic revision recorded as `flask db upgrade` records it."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from werkzeug.serving import make_server

from jeg_contacts.extensions import db
from tests.conftest import RecordingHandler, free_port
from tests.security.test_configuration import PrivateCa, private_ca  # noqa: F401 (fixture)

RELAY_USER, RELAY_PASSWORD = "jeg", "relay password"


def stamp(app: Flask, revision: str = "heads") -> None:
    """Record `revision` as applied (the schema itself came from create_all, which the
    migrations are proven to match by tests/test_migrations.py)."""
    with app.app_context(), db.engine.begin() as connection:
        script = ScriptDirectory(app.extensions["migrate"].directory)
        MigrationContext.configure(connection).stamp(script, revision)


@contextmanager
def serving(app: Flask, ssl_context=None) -> Iterator[str]:
    """Serve `app` on a loopback port in a thread; its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join()


class CheckingAuthenticator:
    """Accepts only RELAY_USER with RELAY_PASSWORD, and counts every attempt."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.attempts += 1
        good = (auth_data.login, auth_data.password) == (
            RELAY_USER.encode(),
            RELAY_PASSWORD.encode(),
        )
        # handled=False: aiosmtpd answers a refusal with 535, as Postfix does.
        return AuthResult(success=good, handled=False)


@dataclass
class TlsRelay:
    handler: RecordingHandler
    authenticator: CheckingAuthenticator
    port: int


@pytest.fixture
def starttls_relay(private_ca: PrivateCa) -> Iterator[TlsRelay]:  # noqa: F811
    """A relay on a loopback port requiring STARTTLS (certificate from the private CA) and a
    login, as Postfix on port 587 does."""
    relay = TlsRelay(RecordingHandler(), CheckingAuthenticator(), free_port())
    controller = Controller(
        relay.handler,
        hostname="127.0.0.1",
        port=relay.port,
        authenticator=relay.authenticator,
        tls_context=private_ca.server_context(),
        require_starttls=True,
    )
    controller.start()
    yield relay
    controller.stop()


def relay_settings(relay: TlsRelay, ca: PrivateCa, **changes: object) -> dict[str, object]:
    settings: dict[str, object] = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": relay.port,
        "SMTP_SECURITY": "starttls",
        "SMTP_USERNAME": RELAY_USER,
        "SMTP_PASSWORD": RELAY_PASSWORD,
        "SMTP_CA_FILE": str(ca.ca_file),
        "SMTP_TIMEOUT": 5,
    }
    settings.update(changes)
    return settings
