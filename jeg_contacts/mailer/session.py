"""An SMTP session with the configured relay: every message, transactional or bulk, goes
through one, so all of them share the connection set-up (TLS, login) and the header check
(a session sends only a `ReadyMessage`)."""

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from flask import current_app

from jeg_contacts.mailer.messages import ReadyMessage, sender_addr_spec


class PlaintextLoginRefused(smtplib.SMTPException):
    """The SMTP password would cross the network unencrypted."""


def _tls_context() -> ssl.SSLContext:
    # Certificates are always checked: against SMTP_CA_FILE when set (a relay whose
    # certificate a private CA signed), else against the system's CAs.
    return ssl.create_default_context(cafile=current_app.config.get("SMTP_CA_FILE") or None)


def connect_smtp() -> smtplib.SMTP:
    """An open, authenticated connection to the configured SMTP relay."""
    config = current_app.config
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    if config["SMTP_SECURITY"] == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config["SMTP_SECURITY"] == "starttls":
            smtp.starttls(context=_tls_context())
        if config["SMTP_USERNAME"]:
            # Checked here as well as at start-up (config.py), on the connection itself: a
            # configuration built some other way must not leak the password either.
            encrypted = isinstance(smtp.sock, ssl.SSLSocket)
            if not encrypted and not config.get("SMTP_ALLOW_PLAINTEXT_AUTH"):
                raise PlaintextLoginRefused(
                    "refused to log in to the SMTP relay without encryption "
                    "(set SMTP_SECURITY=starttls or tls, or SMTP_ALLOW_PLAINTEXT_AUTH=1)"
                )
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    except BaseException:
        smtp.close()
        raise
    return smtp


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

    Any error of a send is raised as smtplib raises it (every one is an OSError). A reply of
    421 or a broken connection also ends the session's connection: the next send opens a new
    one. Use in an app context; close() (or a `with` block) ends it politely."""

    def __init__(self) -> None:
        self.envelope_from = sender_addr_spec()
        self._smtp: smtplib.SMTP | None = None

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
        try:
            if self._smtp is None:
                self._smtp = connect_smtp()
            return _transaction(
                self._smtp,
                self.envelope_from,
                recipients,
                message.data,
                before_data,
                while_server_reads,
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


def _transaction(
    smtp: smtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    before_data: Callable[[], None],
    while_server_reads: Callable[[], None],
) -> str:
    """One SMTP transaction, each command written before the previous one's work is done.

    The addresses were validated when stored, so they go out as they are: smtplib's own
    quoting parses each address again, which costs more than the rest of the transaction."""
    smtp.ehlo_or_helo_if_needed()
    smtp.putcmd("mail", f"FROM:<{sender}>")
    before_data()
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused = {}
    for recipient in recipients:
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
    smtp.send(data)
    while_server_reads()
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    return f"{code} {reply.decode(errors='replace')}"
