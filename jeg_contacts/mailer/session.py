"""An SMTP session with the configured relay: every message, transactional or bulk, goes
through one, so all of them share the connection set-up (TLS, login) and the header check
(a session sends only a `ReadyMessage`)."""

import contextlib
import hashlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from flask import current_app

from jeg_contacts.mailer.messages import ReadyMessage, sender_addr_spec


class RelayReason(StrEnum):
    """What about the relay failed (stored with a paused send)."""

    LOGIN_REFUSED = "login_refused"
    TLS_FAILED = "tls_failed"
    PLAINTEXT_LOGIN_REFUSED = "plaintext_login_refused"
    NO_8BITMIME = "no_8bitmime"


class RelayProblem(smtplib.SMTPException):
    """The relay cannot be used as configured (a refused login, a TLS or certificate
    failure...): no recipient is to blame, and the next message would fail the same way."""

    def __init__(self, reason: RelayReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class PlaintextLoginRefused(RelayProblem):
    """The SMTP password would cross the network unencrypted."""

    def __init__(self) -> None:
        super().__init__(
            RelayReason.PLAINTEXT_LOGIN_REFUSED,
            "refused to log in to the SMTP relay without encryption "
            "(set SMTP_SECURITY=starttls or tls, or SMTP_ALLOW_PLAINTEXT_AUTH=1)",
        )


# A relay locks an account after a few failed logins. So a relay problem is remembered for
# a few seconds per set of relay settings, and the other threads of this process (the
# worker's senders, the web app's) raise it again without connecting; and while no login
# with these settings has succeeded yet, connections are opened one at a time, so a wrong
# password costs one login, not one per thread.
RELAY_PROBLEM_HOLD_SECONDS = 5.0
# smtplib's own order tries every mechanism in turn after a refusal (two failed logins per
# connection on most relays): one is chosen here and tried once.
_LOGIN_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


class _RelayMemo:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proven: set[str] = set()
        self.problems: dict[str, tuple[RelayProblem, float]] = {}


_memo = _RelayMemo()


def _relay_key(config: Mapping[str, Any]) -> str:
    names = ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD")
    settings = repr([config.get(name) for name in (*names, "SMTP_CA_FILE")])
    return hashlib.sha256(settings.encode()).hexdigest()


def _tls_context() -> ssl.SSLContext:
    # Certificates are always checked: against SMTP_CA_FILE when set (a relay whose
    # certificate a private CA signed), else against the system's CAs.
    return ssl.create_default_context(cafile=current_app.config.get("SMTP_CA_FILE") or None)


def connect_smtp() -> smtplib.SMTP:
    """An open, authenticated connection to the configured SMTP relay; RelayProblem when the
    relay refuses the login or TLS fails (or did so moments ago, for another thread)."""
    key = _relay_key(current_app.config)
    if key in _memo.proven:
        return _connect_noting(key)
    with _memo.lock:
        remembered = _memo.problems.get(key)
        if remembered and time.monotonic() - remembered[1] < RELAY_PROBLEM_HOLD_SECONDS:
            problem = remembered[0]
            raise RelayProblem(problem.reason, problem.detail)
        if key not in _memo.proven:
            return _connect_noting(key)
    return _connect_noting(key)


def _connect_noting(key: str) -> smtplib.SMTP:
    try:
        smtp = _connect()
    except RelayProblem as problem:
        _memo.proven.discard(key)
        _memo.problems[key] = (problem, time.monotonic())
        raise
    _memo.proven.add(key)
    _memo.problems.pop(key, None)
    return smtp


def _connect() -> smtplib.SMTP:
    config = current_app.config
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    try:
        if config["SMTP_SECURITY"] == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=_tls_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
    except ssl.SSLError as error:  # the handshake, a certificate not trusted
        raise RelayProblem(RelayReason.TLS_FAILED, str(error)) from error
    try:
        if config["SMTP_SECURITY"] == "starttls":
            _start_tls(smtp)
        if config["SMTP_USERNAME"]:
            # Checked here as well as at start-up (config.py), on the connection itself: a
            # configuration built some other way must not leak the password either.
            encrypted = isinstance(smtp.sock, ssl.SSLSocket)
            if not encrypted and not config.get("SMTP_ALLOW_PLAINTEXT_AUTH"):
                raise PlaintextLoginRefused()
            _log_in(smtp, config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    except BaseException:
        smtp.close()
        raise
    return smtp


def _start_tls(smtp: smtplib.SMTP) -> None:
    try:
        smtp.starttls(context=_tls_context())
    except (ssl.SSLError, smtplib.SMTPNotSupportedError) as error:
        raise RelayProblem(RelayReason.TLS_FAILED, str(error)) from error
    except smtplib.SMTPResponseException as error:
        detail = f"STARTTLS refused: {_reply_text(error.smtp_code, error.smtp_error)}"
        raise RelayProblem(RelayReason.TLS_FAILED, detail) from error


def _log_in(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """Log in with one mechanism, once (RelayProblem when refused)."""
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((name for name in _LOGIN_MECHANISMS if name in offered), None)
    if mechanism is None:
        detail = f"the relay offers no login method this application uses ({', '.join(offered)})"
        raise RelayProblem(RelayReason.LOGIN_REFUSED, detail)
    smtp.user, smtp.password = username, password
    authenticate = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
    try:
        smtp.auth(mechanism, authenticate)
    except smtplib.SMTPAuthenticationError as error:
        detail = _reply_text(error.smtp_code, error.smtp_error)
        raise RelayProblem(RelayReason.LOGIN_REFUSED, detail) from error


def _reply_text(code: int, reply: bytes | str) -> str:
    return f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"


def do_nothing() -> None:
    """The default of a session's hooks."""


class ClosingSession:
    """What every mail session shares: a `with` block ends it through close()."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class SmtpSession(ClosingSession):
    """A connection to the relay, opened at the first message and reused for the next ones.

    Any error of a send is raised as smtplib raises it (every one is an OSError), and a
    problem with the relay itself (login, TLS) as RelayProblem. A reply of 421 or a broken
    connection also ends the session's connection: the next send opens a new one, as does
    the send after SMTP_MAX_PER_CONNECTION messages (the old one ended with QUIT). Use in an
    app context; close() (or a `with` block) ends it politely."""

    def __init__(self) -> None:
        self.envelope_from = sender_addr_spec()
        self._smtp: smtplib.SMTP | None = None
        self._max_per_connection = current_app.config.get("SMTP_MAX_PER_CONNECTION", 0)
        self._on_connection = 0  # transactions begun on the current connection

    def send(
        self,
        recipients: Sequence[str],
        message: ReadyMessage,
        *,
        before_data: Callable[[], None] = do_nothing,
        while_server_reads: Callable[[], None] = do_nothing,
    ) -> str:
        """Send `message` to `recipients`; the server's reply to its DATA (it often names a
        queue id). Raises SMTPRecipientsRefused only when every recipient is refused.

        The caller's own work runs while the server is busy: `before_data` while it handles
        MAIL FROM (and always before the message can reach anyone), `while_server_reads`
        while it reads the message."""
        if self._smtp is not None and 0 < self._max_per_connection <= self._on_connection:
            self.close()  # the relay's limit per connection: QUIT, and open another
        try:
            if self._smtp is None:
                self._smtp = connect_smtp()
                self._on_connection = 0
            self._on_connection += 1
            return _transaction(
                self._smtp, self.envelope_from, recipients, message, before_data, while_server_reads
            )
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:  # the server is closing the connection
                self.discard()
            raise
        except smtplib.SMTPRecipientsRefused:
            raise
        except OSError:  # a broken connection, or a timeout
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the connection without a word to the server (it may be gone already)."""
        if self._smtp is not None:
            with contextlib.suppress(OSError):
                self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        """End the connection with QUIT, or drop it if the server does not answer."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _mail_options(
    smtp: smtplib.SMTP, sender: str, recipients: Sequence[str], message: ReadyMessage
) -> tuple[list[str], dict[str, tuple[int, bytes]]]:
    """The MAIL FROM parameters `message` needs, and the recipients it cannot go to here.

    8-bit text (a French or Russian body goes as 8bit) needs BODY=8BITMIME; relays without
    it are a relay problem. A non-ASCII address or header needs SMTPUTF8; a relay without
    it refuses those recipients, as its own 553 would."""
    options = []
    if message.eight_bit:
        if not smtp.has_extn("8bitmime"):
            detail = "the relay does not accept 8-bit messages (no 8BITMIME in its EHLO reply)"
            raise RelayProblem(RelayReason.NO_8BITMIME, detail)
        options.append("BODY=8BITMIME")
    whole_message = message.utf8_headers or not sender.isascii()
    unreachable = [r for r in recipients if whole_message or not r.isascii()]
    refused: dict[str, tuple[int, bytes]] = {}
    if unreachable and smtp.has_extn("smtputf8"):
        options.append("SMTPUTF8")
    elif unreachable:
        reply = b"5.6.7 the relay does not accept internationalised addresses (no SMTPUTF8)"
        refused = {recipient: (553, reply) for recipient in unreachable}
    return options, refused


def _transaction(
    smtp: smtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    message: ReadyMessage,
    before_data: Callable[[], None],
    while_server_reads: Callable[[], None],
) -> str:
    """One SMTP transaction, each command written before the previous one's work is done.

    The addresses were validated when stored, so they go out as they are: smtplib's own
    quoting parses each address again, which costs more than the rest of the transaction."""
    smtp.ehlo_or_helo_if_needed()
    options, refused = _mail_options(smtp, sender, recipients, message)
    if len(refused) == len(recipients):
        raise smtplib.SMTPRecipientsRefused(refused)
    smtp.command_encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
    smtp.putcmd("mail", " ".join([f"FROM:<{sender}>", *options]))
    before_data()
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    for recipient in recipients:
        if recipient in refused:
            continue
        smtp.putcmd("rcpt", f"TO:<{recipient}>")
        code, reply = smtp.getreply()
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    if len(refused) == len(recipients):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(message.data)
    while_server_reads()
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    return f"{code} {reply.decode(errors='replace')}"
