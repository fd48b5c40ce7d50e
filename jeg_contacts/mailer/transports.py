"""Where mail goes: an SMTP server, or a local Maildir outbox when none is configured."""

import mailbox
import smtplib
import ssl
from collections.abc import Collection, Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from jeg_contacts.extensions import db
from jeg_contacts.mailer.messages import sender_addr_spec, serialise

_PENDING = "jeg_contacts.pending_mail"


# A message ready to go: its envelope recipients and its bytes.
_Prepared = tuple[list[str], bytes]


def _recipients(message: EmailMessage) -> list[str]:
    """The addresses in To and Cc (headers under the modern policy: already parsed)."""
    headers = [*message.get_all("To", []), *message.get_all("Cc", [])]
    return [address.addr_spec for header in headers for address in header.addresses]


def _prepare(message: EmailMessage) -> _Prepared:
    """Serialise `message` (MessageBuildError if it cannot be written safely)."""
    return _recipients(message), serialise(message)


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


def _deliver_prepared(prepared: Sequence[_Prepared]) -> None:
    if current_app.config["SMTP_HOST"]:
        with connect_smtp() as smtp:
            envelope_from = sender_addr_spec()
            for recipients, raw in prepared:
                smtp.sendmail(envelope_from, recipients, raw)
    else:
        outbox = mailbox.Maildir(Path(current_app.config["OUTBOX_DIR"]), create=True)
        for _recipients, raw in prepared:
            outbox.add(raw)


def deliver(messages: Sequence[EmailMessage]) -> None:
    """Send now: over SMTP when SMTP_HOST is set, else into the Maildir outbox."""
    if messages:
        _deliver_prepared([_prepare(message) for message in messages])


def send_after_commit(message: EmailMessage) -> None:
    """Deliver `message` once the current transaction commits; drop it if it rolls back.

    The message is written out now: one that cannot be written raises MessageBuildError
    here, before the commit, so the caller can refuse what the message was to confirm."""
    prepared = _prepare(message)
    session = db.session()
    if not session.in_transaction():
        # Tie the message to a transaction even before any query, so a rollback discards it.
        session.begin()
    session.info.setdefault(_PENDING, []).append(prepared)


@event.listens_for(Session, "after_commit")
def _deliver_pending(session: Session) -> None:
    messages = session.info.pop(_PENDING, [])
    if not messages:
        return
    try:
        _deliver_prepared(messages)
    except Exception:
        # The data is already committed; a lost notification is recoverable ("send me a new
        # link"), a 500 after a successful sign-up is not.
        current_app.logger.exception("could not deliver %d message(s)", len(messages))


@event.listens_for(Session, "after_soft_rollback")
def _discard_pending(session: Session, previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)


def deliver_raw(recipient: str, raw: bytes) -> None:
    """Send one pre-built message (bytes with CRLF line ends) to one address: over SMTP when
    SMTP_HOST is set, else into the Maildir outbox."""
    _deliver_prepared([([recipient], raw)])


def forget_mail_to(addresses: Collection[str]) -> int:
    """Delete from the Maildir outbox every message to one of `addresses` (an erasure: the
    outbox keeps whole messages, names and links included); returns how many."""
    outbox = Path(current_app.config["OUTBOX_DIR"])
    wanted = {address.casefold() for address in addresses}
    parser = BytesHeaderParser(policy=policy.default)
    deleted = 0
    # tmp/ too: a message still being written, or left there by a crash.
    for path in (path for folder in ("new", "cur", "tmp") for path in (outbox / folder).glob("*")):
        try:
            with path.open("rb") as raw:
                headers = parser.parse(raw)
        except OSError:  # gone meanwhile
            continue
        if {address.casefold() for address in _recipients(headers)} & wanted:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted
