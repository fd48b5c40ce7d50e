"""Where mail goes: an SMTP server, or a local Maildir outbox when none is configured."""

import mailbox
import smtplib
import ssl
from collections.abc import Collection, Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from jeg_contacts.extensions import db
from jeg_contacts.mailer.messages import sender_address, serialise

_PENDING = "jeg_contacts.pending_mail"


def _recipients(message: EmailMessage) -> list[str]:
    headers = [*message.get_all("To", []), *message.get_all("Cc", [])]
    return [addr for _name, addr in getaddresses([str(value) for value in headers])]


def connect_smtp() -> smtplib.SMTP:
    """An open, authenticated connection to the configured SMTP relay."""
    config = current_app.config
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    if config["SMTP_SECURITY"] == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config["SMTP_SECURITY"] == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    except BaseException:
        smtp.close()
        raise
    return smtp


def _send_smtp(messages: Sequence[EmailMessage]) -> None:
    with connect_smtp() as smtp:
        envelope_from = sender_address().addr_spec
        for message in messages:
            smtp.sendmail(envelope_from, _recipients(message), serialise(message))


def _send_maildir(messages: Sequence[EmailMessage]) -> None:
    outbox = mailbox.Maildir(Path(current_app.config["OUTBOX_DIR"]), create=True)
    for message in messages:
        outbox.add(serialise(message))


def deliver(messages: Sequence[EmailMessage]) -> None:
    """Send now: over SMTP when SMTP_HOST is set, else into the Maildir outbox."""
    if not messages:
        return
    if current_app.config["SMTP_HOST"]:
        _send_smtp(messages)
    else:
        _send_maildir(messages)


def send_after_commit(message: EmailMessage) -> None:
    """Deliver `message` once the current transaction commits; drop it if it rolls back."""
    session = db.session()
    if not session.in_transaction():
        # Tie the message to a transaction even before any query, so a rollback discards it.
        session.begin()
    session.info.setdefault(_PENDING, []).append(message)


@event.listens_for(Session, "after_commit")
def _deliver_pending(session: Session) -> None:
    messages = session.info.pop(_PENDING, [])
    if not messages:
        return
    try:
        deliver(messages)
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
    if current_app.config["SMTP_HOST"]:
        with connect_smtp() as smtp:
            smtp.sendmail(sender_address().addr_spec, [recipient], raw)
    else:
        mailbox.Maildir(Path(current_app.config["OUTBOX_DIR"]), create=True).add(raw)


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
