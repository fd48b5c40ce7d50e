"""Configuration from the environment: safe defaults, and refusal of unsafe production settings."""

import os
import stat
from pathlib import Path

import pytest

from jeg_contacts import create_app
from jeg_contacts.config import ConfigurationError


@pytest.fixture
def instance_path() -> Path:
    return Path(os.environ["INSTANCE_PATH"])


def test_production_without_secret_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JEG_ENV", "production")

    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app()


def test_production_with_secret_key_starts_with_secure_cookies(
    monkeypatch: pytest.MonkeyPatch, instance_path: Path
) -> None:
    monkeypatch.setenv("JEG_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-long-production-secret-of-40-characters")

    app = create_app()

    assert app.config["JEG_ENV"] == "production"
    assert app.config["SECRET_KEY"] == "a-long-production-secret-of-40-characters"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert not (instance_path / "secret_key").exists()


def test_development_does_not_require_secure_cookies() -> None:
    app = create_app()

    assert app.config["JEG_ENV"] == "development"
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_development_secret_key_is_generated_once_and_kept(instance_path: Path) -> None:
    first = create_app()
    key_file = instance_path / "secret_key"

    assert key_file.read_text() == first.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert create_app().config["SECRET_KEY"] == first.config["SECRET_KEY"]


def test_database_defaults_to_sqlite_file_in_instance_path(instance_path: Path) -> None:
    app = create_app()

    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_path / 'jeg_contacts.db'}"


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        (
            "postgres://jeg:pw@db.example:5432/jeg",
            "postgresql+psycopg://jeg:pw@db.example:5432/jeg",
        ),
        ("postgresql://jeg:pw@db.example/jeg", "postgresql+psycopg://jeg:pw@db.example/jeg"),
        ("postgresql+psycopg://jeg@db.example/jeg", "postgresql+psycopg://jeg@db.example/jeg"),
        ("sqlite:////srv/jeg/contacts.db", "sqlite:////srv/jeg/contacts.db"),
    ],
)
def test_database_url_names_the_psycopg_driver_for_postgres(
    monkeypatch: pytest.MonkeyPatch, database_url: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)

    app = create_app()

    assert app.config["SQLALCHEMY_DATABASE_URI"] == expected


def test_unknown_smtp_security_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_SECURITY", "bogus")

    with pytest.raises(ConfigurationError, match="SMTP_SECURITY"):
        create_app()


@pytest.mark.parametrize(
    ("security", "port"),
    [("none", 25), ("starttls", 587), ("tls", 465), ("STARTTLS", 587)],
)
def test_smtp_port_default_follows_smtp_security(
    monkeypatch: pytest.MonkeyPatch, security: str, port: int
) -> None:
    monkeypatch.setenv("SMTP_SECURITY", security)

    app = create_app()

    assert app.config["SMTP_SECURITY"] == security.lower()
    assert app.config["SMTP_PORT"] == port


def test_smtp_security_defaults_to_none_on_port_25() -> None:
    app = create_app()

    assert app.config["SMTP_SECURITY"] == "none"
    assert app.config["SMTP_PORT"] == 25


def test_explicit_smtp_port_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_SECURITY", "tls")
    monkeypatch.setenv("SMTP_PORT", "2465")

    assert create_app().config["SMTP_PORT"] == 2465


def test_non_numeric_smtp_port_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "submission")

    with pytest.raises(ConfigurationError, match="SMTP_PORT"):
        create_app()
