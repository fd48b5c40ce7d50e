"""`flask doctor`'s checks: what a server needs, each found OK, worth a WARNING, or a PROBLEM,
said in plain words with what to do about it.

A check only looks (and, with `--to`, sends one test message): it changes nothing stored."""

import json
import shutil
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from jeg_contacts.config import MIN_PRODUCTION_SECRET_KEY_LENGTH
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailer.messages import build_message, ready
from jeg_contacts.mailer.session import (
    PlaintextLoginRefused,
    RelayProblem,
    RelayReason,
    connect_smtp,
)
from jeg_contacts.mailer.transports import open_session
from jeg_contacts.mailing.models import Worker
from jeg_contacts.mailing.relay import sends_paused_by_relay

# A key made as the README says (secrets.token_urlsafe(48)) has 64 characters, 40 or more of
# them different; "changeme" repeated has 6. Fewer than this many different ones is a pattern.
MIN_DISTINCT_KEY_CHARACTERS = 12
BASE_URL_TIMEOUT_SECONDS = 5
# Free space under which mail, uploads and the SQLite file may soon fail to be written.
DISK_PROBLEM_BYTES = 500 * 1024**2
DISK_WARNING_BYTES = 2 * 1024**3


class Level(StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    PROBLEM = "PROBLEM"


@dataclass(frozen=True)
class Finding:
    """One line of the report: how it stands, about what, and in words what to do."""

    level: Level
    topic: str
    text: str

    def line(self) -> str:
        return f"{self.level.value:<8} {self.topic}: {self.text}"


def ok(topic: str, text: str) -> Finding:
    return Finding(Level.OK, topic, text)


def warning(topic: str, text: str) -> Finding:
    return Finding(Level.WARNING, topic, text)


def problem(topic: str, text: str) -> Finding:
    return Finding(Level.PROBLEM, topic, text)


def _production() -> bool:
    return current_app.config["JEG_ENV"] == "production"


def check_mode() -> Finding:
    if _production():
        return ok("mode", "production (JEG_ENV=production): secure cookies, HSTS")
    return warning(
        "mode",
        "development: fine on a laptop, but a server must run with JEG_ENV=production "
        "(secure cookies, HSTS, a SECRET_KEY of its own)",
    )


def check_secret_key() -> Finding:
    key = current_app.config["SECRET_KEY"]
    make_one = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
    weak = None
    if len(key) < MIN_PRODUCTION_SECRET_KEY_LENGTH:
        weak = f"SECRET_KEY has only {len(key)} characters"
    elif len(set(key)) < MIN_DISTINCT_KEY_CHARACTERS:
        weak = f"SECRET_KEY repeats a few characters ({len(set(key))} different ones)"
    if weak is None:
        return ok("secret key", f"{len(key)} characters, not a visible pattern")
    advice = (
        f"{weak}: anyone who guesses it can forge sessions and emailed links; {make_one} "
        "(changing it invalidates every link already emailed)"
    )
    return problem("secret key", advice) if _production() else warning("secret key", advice)


def check_base_url_scheme() -> Finding:
    base_url = current_app.config["BASE_URL"]
    if base_url.startswith("https://"):
        return ok("BASE_URL", f"{base_url} uses https")
    advice = f"{base_url} is not https: links in emails would travel, tokens included, in clear"
    if _production():
        return problem("BASE_URL", f"{advice}; set BASE_URL=https://your.public.address")
    return warning("BASE_URL", f"{advice} (fine for development)")


def check_base_url_reachable() -> Finding:
    """GET BASE_URL/healthz from this server: the links in emails lead somewhere."""
    url = current_app.config["BASE_URL"] + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=BASE_URL_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read(4096) or b"{}")
    except urllib.error.HTTPError as error:
        return problem(
            "BASE_URL", f"{url} answered {error.code}: is the proxy forwarding to this app?"
        )
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return problem(
            "BASE_URL",
            f"{url} could not be opened from this server ({reason}): check the address, DNS, "
            "the proxy and its certificate (SSL_CERT_FILE names extra CAs to trust)",
        )
    if not isinstance(answer, dict) or answer.get("status") != "ok":
        return problem("BASE_URL", f"{url} answered, but not as this app does: {answer!r:.80}")
    return ok("BASE_URL", f"{url} answers from this server")


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def check_database() -> list[Finding]:
    url = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.connect() as connection:
            connection.execute(sa.select(1))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return [problem("database", f"{url} cannot be reached ({reason}): check DATABASE_URL")]
    found = [ok("database", f"{db.engine.dialect.name} at {url} answers")]
    script = ScriptDirectory(current_app.extensions["migrate"].directory)
    heads = set(script.get_heads())
    upgrade = "run: flask --app wsgi db upgrade"
    if current == heads:
        found.append(ok("migrations", f"at the latest revision ({', '.join(sorted(heads))})"))
    elif not current:
        found.append(problem("migrations", f"no migration is recorded as applied; {upgrade}"))
    elif unknown := [rev for rev in current if not _known(script, rev)]:
        found.append(
            problem(
                "migrations",
                f"the database is at {', '.join(unknown)}, which this version of the code does "
                "not know: it was upgraded by a newer version; install that version again",
            )
        )
    else:
        found.append(
            problem(
                "migrations",
                f"the database is at {', '.join(sorted(current))}, behind "
                f"{', '.join(sorted(heads))}; {upgrade}",
            )
        )
    return found


def check_bounce_mailbox() -> Finding:
    if not current_app.config.get("BOUNCE_MAILBOX"):
        return ok("bounce mailbox", "not configured (BOUNCE_MAILBOX is not set)")
    return warning("bounce mailbox", "BOUNCE_MAILBOX is set, but this version cannot check it")


def check_worker() -> Finding:
    """The worker's heartbeat (the `workers` table, written every few seconds)."""
    lease = current_app.config["WORKER_LEASE_SECONDS"]
    workers = db.session.scalars(sa.select(Worker).order_by(Worker.heartbeat_at.desc())).all()
    start = "start it: flask --app wsgi worker (on a server, its systemd service)"
    if not workers:
        return problem(
            "worker", f"no worker is running: announcements and imports wait for one; {start}"
        )
    now = utcnow()
    latest = workers[0]
    age = (now - latest.heartbeat_at).total_seconds()
    name = f"{latest.hostname} (pid {latest.pid})"
    if age > lease:
        return problem(
            "worker",
            f"the last worker, on {name}, was last seen {age:.0f} s ago (more than "
            f"WORKER_LEASE_SECONDS={lease}): it has stopped or hangs; {start}",
        )
    running = sum(1 for w in workers if (now - w.heartbeat_at).total_seconds() <= lease)
    since = latest.started_at.strftime("%Y-%m-%d %H:%M UTC")
    return ok(
        "worker",
        f"{running} running; {name} since {since}, last seen {age:.0f} s ago",
    )


def check_disk() -> list[Finding]:
    """Free space where the app writes: the instance folder and, without a relay, the outbox."""
    folders = [Path(current_app.instance_path)]
    if not current_app.config["SMTP_HOST"]:
        folders.append(Path(current_app.config["OUTBOX_DIR"]))
    found, seen = [], set()
    for folder in folders:
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        device = existing.stat().st_dev
        if device in seen:
            continue
        seen.add(device)
        free = shutil.disk_usage(existing).free
        text = f"{free / 1024**3:.1f} GB free for {folder}"
        if free < DISK_PROBLEM_BYTES:
            found.append(problem("disk", f"only {text}: free some space now"))
        elif free < DISK_WARNING_BYTES:
            found.append(warning("disk", f"only {text}: free some space soon"))
        else:
            found.append(ok("disk", text))
    return found


def _relay_description() -> str:
    config = current_app.config
    security = {
        "none": "without TLS",
        "starttls": "with STARTTLS",
        "tls": "with implicit TLS",
    }[config["SMTP_SECURITY"]]
    login = f", logged in as {config['SMTP_USERNAME']}" if config["SMTP_USERNAME"] else ""
    return f"{config['SMTP_HOST']}:{config['SMTP_PORT']} {security}{login}"


# What to do about each kind of relay problem (mailer.session.RelayReason).
_RELAY_ADVICE = {
    RelayReason.LOGIN_REFUSED: "check SMTP_USERNAME and SMTP_PASSWORD",
    RelayReason.TLS_FAILED: (
        "check SMTP_SECURITY (starttls on port 587, tls on 465), SMTP_CA_FILE, and that "
        "SMTP_HOST is a name the relay's certificate is made out to"
    ),
    RelayReason.PLAINTEXT_LOGIN_REFUSED: "set SMTP_SECURITY=starttls or tls",
    RelayReason.NO_8BITMIME: "use a relay that accepts 8-bit messages (8BITMIME)",
}


def _relay_failure(error: Exception) -> str:
    """What a failed connection to the relay means, and what to do."""
    config = current_app.config
    where = f"{config['SMTP_HOST']}:{config['SMTP_PORT']}"
    if isinstance(error, RelayProblem) and isinstance(error.__cause__, Exception):
        error = error.__cause__  # the refused login or the TLS error itself, explained below
    if isinstance(error, smtplib.SMTPAuthenticationError):
        reply = error.smtp_error.decode(errors="replace") if error.smtp_error else ""
        return (
            f"{where} refused the login of {config['SMTP_USERNAME']} ({error.smtp_code} "
            f"{reply}): check SMTP_USERNAME and SMTP_PASSWORD"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"the certificate of {where} is not trusted ({error.verify_message}): set "
            "SMTP_CA_FILE to the CA that signed it, and SMTP_HOST to a name it is made out to"
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS with {where} failed ({error.reason}): check SMTP_SECURITY (starttls on port "
            "587, tls on 465)"
        )
    if isinstance(error, PlaintextLoginRefused | smtplib.SMTPNotSupportedError):
        return f"{where}: {error}; check SMTP_SECURITY"
    if isinstance(error, RelayProblem):
        return f"{where}: {error.detail}; {_RELAY_ADVICE[error.reason]}"
    if isinstance(error, socket.gaierror):
        return f"the name {config['SMTP_HOST']} cannot be resolved ({error.strerror})"
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error.decode(errors="replace") if error.smtp_error else ""
        return f"{where} answered {error.smtp_code} {reply}"
    return (
        f"cannot talk to {where} ({error.__class__.__name__}: {error}): is the relay running, "
        "are SMTP_HOST and SMTP_PORT right, does a firewall block the port?"
    )


def check_relay() -> Finding:
    """Connect, TLS and login, as the worker does; QUIT at once."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        where = f"mail is written to the Maildir outbox {config['OUTBOX_DIR']}, not sent"
        if _production():
            return warning("relay", f"SMTP_HOST is not set: {where}; nobody receives it")
        return ok("relay", f"SMTP_HOST is not set: {where} (read it with flask outbox)")
    try:
        smtp = connect_smtp()
    except (OSError, smtplib.SMTPException) as error:
        return problem("relay", _relay_failure(error))
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
    if config["SMTP_SECURITY"] == "none" and _production():
        return warning(
            "relay",
            f"{_relay_description()}: mail crosses the network unencrypted; "
            "set SMTP_SECURITY=starttls or tls if the relay offers it",
        )
    return ok("relay", _relay_description())


def check_sends_paused_by_relay() -> list[Finding]:
    """Announcements the worker paused because the relay failed: they wait for staff."""
    paused = sends_paused_by_relay()
    if not paused:
        return [ok("paused sends", "no send is paused for a relay problem")]
    return [
        problem(
            "paused sends",
            f"announcement #{pause.announcement_id} “{pause.subject}” has been paused since "
            f"{pause.since:%Y-%m-%d %H:%M} UTC: {pause.explanation} (the relay said: "
            f"{pause.detail})",
        )
        for pause in paused
    ]


def send_test_message(address: str) -> Finding:
    """Send one real message to `address` the way all mail goes (relay or outbox)."""
    text = (
        "This is a test message from `flask doctor` on the jeg-contacts server.\n"
        f"Its links lead to {current_app.config['BASE_URL']}.\n"
    )
    message = build_message(
        to_email=address,
        to_name="",
        subject="jeg-contacts: test message from flask doctor",
        text=text,
        html=f"<p>{text}</p>",
    )
    try:
        with open_session() as session:
            reply = session.send([address], ready(message))
    except (OSError, smtplib.SMTPException) as error:
        return problem("test message", f"not sent to {address}: {_relay_failure(error)}")
    return ok("test message", f"sent to {address} ({reply.strip()}); check that it arrived")


Check = Callable[[], Finding | list[Finding]]
CHECKS: list[Check] = [
    check_mode,
    check_secret_key,
    check_base_url_scheme,
    check_base_url_reachable,
    check_database,
    check_relay,
    check_sends_paused_by_relay,
    check_bounce_mailbox,
    check_worker,
    check_disk,
]


def run_checks(checks: Iterable[Check] = CHECKS) -> Iterable[Finding]:
    """Each check's findings, as soon as it is done (a check may take seconds)."""
    for check in checks:
        try:
            result = check()
        except SQLAlchemyError:
            db.session.rollback()
            name = check.__name__.removeprefix("check_").replace("_", " ")
            result = problem(name, "could not be checked: the database did not answer")
        yield from (result if isinstance(result, list) else [result])
