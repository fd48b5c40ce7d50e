"""Configuration: safe defaults, then the environment; unsafe production settings refuse."""

import os
import secrets
import ssl
from pathlib import Path
from typing import Any

SMTP_SECURITY_MODES = ("none", "starttls", "tls")
LOG_FORMATS = ("text", "json")
# Room in an upload request for what surrounds the file: multipart boundaries and headers,
# the CSRF token and the reading options (well under a kilobyte in practice).
UPLOAD_ENVELOPE_BYTES = 64 * 1024
# Sessions, CSRF tokens and emailed links are only as hard to forge as this key is to guess.
MIN_PRODUCTION_SECRET_KEY_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The environment asks for something the app must not run with."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc


def _database_url(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'jeg_contacts.db'}"
    # Hosts hand out plain postgres:// URLs; SQLAlchemy needs the psycopg 3 driver named.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _secret_key(instance_path: Path, production: bool) -> str:
    key = os.environ.get("SECRET_KEY")
    if production and key and len(key) < MIN_PRODUCTION_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            f"SECRET_KEY must be at least {MIN_PRODUCTION_SECRET_KEY_LENGTH} characters when "
            f"JEG_ENV=production (it has {len(key)}); make one with: "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if key:
        return key
    if production:
        raise ConfigurationError("SECRET_KEY must be set when JEG_ENV=production")
    # Development: generate once and keep it, so sessions and emailed links survive restarts.
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def _smtp_settings(smtp_security: str) -> dict[str, Any]:
    """The SMTP settings that decide what crosses the network in clear, refused when unsafe."""
    username = os.environ.get("SMTP_USERNAME", "")
    allow_plaintext_auth = os.environ.get("SMTP_ALLOW_PLAINTEXT_AUTH", "0") == "1"
    if username and smtp_security == "none" and not allow_plaintext_auth:
        raise ConfigurationError(
            "SMTP_USERNAME is set but SMTP_SECURITY=none would send the SMTP password "
            "unencrypted: set SMTP_SECURITY=starttls or tls, or SMTP_ALLOW_PLAINTEXT_AUTH=1 "
            "if the relay is reached over a network you trust"
        )
    ca_file = os.environ.get("SMTP_CA_FILE", "")
    if ca_file:
        if smtp_security == "none":
            raise ConfigurationError(
                "SMTP_CA_FILE is set but SMTP_SECURITY=none: no certificate would be checked; "
                "set SMTP_SECURITY=starttls or tls"
            )
        try:
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"SMTP_CA_FILE={ca_file!r} is not a readable PEM file of CA certificates: {exc}"
            ) from exc
    return {
        "SMTP_USERNAME": username,
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_SECURITY": smtp_security,
        "SMTP_ALLOW_PLAINTEXT_AUTH": allow_plaintext_auth,
        "SMTP_CA_FILE": ca_file,
    }


def _import_settings() -> dict[str, Any]:
    # Room for IMPORT_MAX_ROWS rows with every column (100,000 exported contacts: 25 MB).
    import_max_bytes = _env_int("IMPORT_MAX_BYTES", 64 * 1024 * 1024)
    return {
        "IMPORT_MAX_BYTES": import_max_bytes,
        "IMPORT_MAX_ROWS": _env_int("IMPORT_MAX_ROWS", 200_000),
        "IMPORT_MAX_PENDING": _env_int("IMPORT_MAX_PENDING", 1000),
        # What reading an XLSX file may unpack, whatever its directory declares: in total
        # (about 56,000 contacts as the app exports them, every column; 100,000 unpack to
        # 114 MB), and per part against its packed size (exports pack about 10 to 1, a zip
        # bomb hundreds or thousands to 1).
        "IMPORT_MAX_UNPACKED_BYTES": _env_int("IMPORT_MAX_UNPACKED_BYTES", 64 * 1024 * 1024),
        "IMPORT_MAX_UNPACK_RATIO": _env_int("IMPORT_MAX_UNPACK_RATIO", 100),
        # The largest request body: by default an import file at its limit plus its form, so
        # that the file size decides and a too-big file gets the import's own message.
        "MAX_CONTENT_LENGTH": _env_int(
            "MAX_CONTENT_LENGTH", import_max_bytes + UPLOAD_ENVELOPE_BYTES
        ),
    }


def load_config(instance_path: Path) -> dict[str, Any]:
    """Build the app configuration from the environment (see README for every variable)."""
    production = os.environ.get("JEG_ENV", "development") == "production"
    smtp_security = os.environ.get("SMTP_SECURITY", "none").lower()
    if smtp_security not in SMTP_SECURITY_MODES:
        raise ConfigurationError(f"SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY_MODES)}")
    smtp_host = os.environ.get("SMTP_HOST", "")
    default_port = {"none": 25, "starttls": 587, "tls": 465}[smtp_security]
    import_settings = _import_settings()
    log_format = os.environ.get("LOG_FORMAT", "text").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    return {
        "JEG_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(instance_path, production),
        "SQLALCHEMY_DATABASE_URI": _database_url(instance_path),
        "SQLITE_BUSY_TIMEOUT_SECONDS": _env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 30),
        "BASE_URL": (os.environ.get("BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        # Checked by create_app with the mailer, which writes it into every message.
        "MAIL_FROM": os.environ.get("MAIL_FROM") or "JEG secretariat <jeg-contacts@localhost>",
        "SMTP_HOST": smtp_host,
        "SMTP_PORT": _env_int("SMTP_PORT", default_port),
        **_smtp_settings(smtp_security),
        "SMTP_TIMEOUT": _env_int("SMTP_TIMEOUT", 30),
        # Relays limit the messages of one connection (Exchange, hosted relays); 0: no limit.
        "SMTP_MAX_PER_CONNECTION": max(0, _env_int("SMTP_MAX_PER_CONNECTION", 100)),
        "OUTBOX_DIR": os.environ.get("OUTBOX_DIR", str(instance_path / "outbox")),
        "CONFIRM_LINK_MAX_AGE_DAYS": _env_int("CONFIRM_LINK_MAX_AGE_DAYS", 7),
        "EMAILS_PER_ADDRESS_PER_DAY": _env_int("EMAILS_PER_ADDRESS_PER_DAY", 3),
        "SIGNUP_RATE_LIMIT": _env_int("SIGNUP_RATE_LIMIT", 30),
        "SIGNUP_RATE_WINDOW_SECONDS": _env_int("SIGNUP_RATE_WINDOW_SECONDS", 600),
        "TRUSTED_PROXY_COUNT": _env_int("TRUSTED_PROXY_COUNT", 0),
        "WORKER_LEASE_SECONDS": _env_int("WORKER_LEASE_SECONDS", 30),
        "DELIVERY_MAX_ATTEMPTS": _env_int("DELIVERY_MAX_ATTEMPTS", 5),
        "DELIVERY_RETRY_BASE_SECONDS": _env_int("DELIVERY_RETRY_BASE_SECONDS", 60),
        "JOB_MAX_ATTEMPTS": _env_int("JOB_MAX_ATTEMPTS", 3),
        "JOB_RETRY_BASE_SECONDS": _env_int("JOB_RETRY_BASE_SECONDS", 30),
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": _env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5),
        "LOGIN_LOCK_MINUTES": _env_int("LOGIN_LOCK_MINUTES", 15),
        "LOGIN_MAX_FAILURES_PER_CLIENT": _env_int("LOGIN_MAX_FAILURES_PER_CLIENT", 20),
        "LOGIN_CLIENT_WINDOW_MINUTES": _env_int("LOGIN_CLIENT_WINDOW_MINUTES", 15),
        "SESSION_IDLE_MINUTES": _env_int("SESSION_IDLE_MINUTES", 60),
        "SESSION_MAX_HOURS": _env_int("SESSION_MAX_HOURS", 12),
        "EMAIL_CHECK_DELIVERABILITY": os.environ.get("EMAIL_CHECK_DELIVERABILITY", "0") == "1",
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "LOG_FORMAT": log_format,
        # Empty: no /metrics at all (404).
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        **import_settings,
    }
