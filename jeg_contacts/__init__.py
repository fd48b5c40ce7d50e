"""jeg-contacts: contact and mailing manager of the Joint Expert Group on Water and
Industrial Accidents."""

import os
import sqlite3
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request, url_for
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from jeg_contacts import security_headers
from jeg_contacts.config import ConfigurationError, load_config
from jeg_contacts.extensions import babel, csrf, db, migrate
from jeg_contacts.i18n import LANGUAGE_NAMES, remember_requested_language, select_locale
from jeg_contacts.mailer.messages import MessageBuildError, address_lines

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        # WAL lets readers and one writer share the file (the wait for the writer's turn is
        # SQLITE_BUSY_TIMEOUT_SECONDS, see create_app); SQLite leaves foreign keys off unless asked.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL survives an application crash; it skips an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and overwritten values are zeroed, not left in free space for anyone who
        # reads the file: an erased person's data must be gone from the bytes on disk too
        # (erasure then checkpoints the write-ahead log, which holds the old pages).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def _check_mail_from(mail_from: str) -> None:
    """Refuse to start with a sender no message could carry: every message would be refused
    (a sign-up with it) until someone noticed. Here rather than in config, which builds on
    nothing: the mailer decides what a header can carry."""
    try:
        address_lines("From", *parseaddr(mail_from))
    except MessageBuildError as exc:
        raise ConfigurationError(
            f"MAIL_FROM={mail_from!r} is not an address like 'JEG secretariat <jeg@example.org>'"
        ) from exc


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application; `test_config` overrides the environment's settings."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(Path(app.instance_path)))
    # The environment's sender, as load_config's own checks: not a test's override.
    _check_mail_from(app.config["MAIL_FROM"])
    if test_config:
        app.config.update(test_config)
    engine_options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    # A database error's text would otherwise carry the statement's values (addresses,
    # link secrets, password hashes) into the logs.
    engine_options.setdefault("hide_parameters", True)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # sqlite3's `timeout` is SQLite's busy timeout: how long a write waits for its turn.
        connect_args = engine_options.setdefault("connect_args", {})
        connect_args.setdefault("timeout", app.config["SQLITE_BUSY_TIMEOUT_SECONDS"])
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    from jeg_contacts.auth.access import enforce_access, login_manager
    from jeg_contacts.operations import logs

    # First, so every request has its id before any other before_request function runs.
    logs.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    login_manager.init_app(app)
    # Access is checked before CSRF, so a refused request is always a login redirect or a 403.
    app.before_request(enforce_access)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.before_request(remember_requested_language)

    _register_features(app)

    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    _register_template_helpers(app)
    _register_error_pages(app)
    security_headers.init_app(app)
    return app


class RecordIdConverter(IntegerConverter):
    """`<int:...>` in routes, bounded so a huge id is a 404, not a database overflow."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def _register_features(app: Flask) -> None:
    app.url_map.converters["int"] = RecordIdConverter

    from jeg_contacts import ratelimit  # noqa: F401  (its table belongs to the metadata)
    from jeg_contacts.archive.views import bp as archive_bp
    from jeg_contacts.audit.views import bp as audit_bp
    from jeg_contacts.contacts.cli import contacts_cli, seed_command
    from jeg_contacts.dashboard.views import bp as dashboard_bp
    from jeg_contacts.demo.cli import demo_data_command
    from jeg_contacts.directory.views import bp as directory_bp
    from jeg_contacts.exports import cli as _export_commands  # noqa: F401  (join `flask contacts`)
    from jeg_contacts.exports.views import bp as exports_bp
    from jeg_contacts.imports import cli as _import_commands  # noqa: F401  (join `flask contacts`)
    from jeg_contacts.imports.views import bp as imports_bp
    from jeg_contacts.jobs import models as _jobs_models  # noqa: F401  (its table)
    from jeg_contacts.mailer.cli import outbox_command
    from jeg_contacts.mailing.cli import announcements_cli
    from jeg_contacts.mailing.views import bp as mailing_bp
    from jeg_contacts.operations.cli import backup_command, doctor_command, restore_command
    from jeg_contacts.operations.views import bp as operations_bp
    from jeg_contacts.organisations.views import bp as organisations_bp
    from jeg_contacts.pages.views import bp as pages_bp
    from jeg_contacts.privacy.views import bp as privacy_bp
    from jeg_contacts.signup.views import bp as signup_bp
    from jeg_contacts.staff.cli import users_cli
    from jeg_contacts.staff.views import bp as auth_bp
    from jeg_contacts.topics.views import bp as topics_bp
    from jeg_contacts.worker import worker_command

    for blueprint in (
        pages_bp,
        signup_bp,
        auth_bp,
        dashboard_bp,
        directory_bp,
        organisations_bp,
        topics_bp,
        audit_bp,
        mailing_bp,
        archive_bp,
        exports_bp,
        imports_bp,
        privacy_bp,
        operations_bp,
    ):
        app.register_blueprint(blueprint)
    for command in (
        seed_command,
        outbox_command,
        users_cli,
        demo_data_command,
        announcements_cli,
        worker_command,
        contacts_cli,
        doctor_command,
        backup_command,
        restore_command,
    ):
        app.cli.add_command(command)


def _register_template_helpers(app: Flask) -> None:
    from jeg_contacts.auth.models import Role
    from jeg_contacts.contacts.services import PRIVACY_NOTICE_VERSION

    @app.template_global()
    def url_with(**changes: Any) -> str:
        """The current URL with some query arguments changed (None removes one)."""
        args = request.args.to_dict(flat=False)
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = [value]
        return url_for(request.endpoint, **(request.view_args or {}), **args)

    def language_url(code: str) -> str:
        """The current page in another language (the landing page for error pages)."""
        if request.endpoint and request.method == "GET":
            return url_for(request.endpoint, **(request.view_args or {}), lang=code)
        return url_for("pages.index", lang=code)

    @app.context_processor
    def inject_language() -> dict[str, Any]:
        return {
            "current_language": str(get_locale() or "en"),
            "language_names": LANGUAGE_NAMES,
            "language_url": language_url,
            "privacy_version": PRIVACY_NOTICE_VERSION,
            "roles": Role,
        }


def _register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> tuple[str, int]:
        return render_template("errors/csrf.html"), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
        if error.code is None or error.code < 400:
            return error
        headers = {"Retry-After": "600"} if error.code == 429 else {}
        return render_template("errors/http.html", error=error), error.code, headers

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return render_template("errors/http.html", error=None), 500

    @app.errorhandler(OperationalError)
    def database_busy(error: OperationalError) -> tuple[str, int, dict[str, str]]:
        # SQLite: another writer (a large import, say) held the database for longer than the
        # busy timeout. Nothing was saved; say so and ask for a retry rather than fail with 500.
        if "database is locked" not in str(error.orig):
            raise error
        db.session.rollback()
        busy = ServiceUnavailable()
        return render_template("errors/http.html", error=busy), 503, {"Retry-After": "60"}
