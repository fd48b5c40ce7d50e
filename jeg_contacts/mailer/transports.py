"""Where mail goes: an SMTP session with the relay, or a local Maildir outbox when none is
configured. Both take only checked messages (`ReadyMessage`) and answer alike."""

import mailbox
from collections.abc import Callable, Collection, Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from jeg_contacts.extensions import db
from jeg_contacts.mailer.messages import ReadyMessage, ready
from jeg_contacts.mailer.session import ClosingSession, SmtpSession, do_nothing

_PENDING = "jeg_contacts.pending_mail"


# A message ready to go: its envelope recipients and the message.
_Prepared = tuple[list[str], ReadyMessage]


def _recipients(message: EmailMessage) -> list[str]:
    """The addresses in To and Cc (headers under the modern policy: already parsed)."""
    headers = [*message.get_all("To", []), *message.get_all("Cc", [])]
    return [address.addr_spec for header in headers for address in header.addresses]


def _prepare(message: EmailMessage) -> _Prepared:
    """Write `message` out (MessageBuildError if it cannot be written safely)."""
    return _recipients(message), ready(message)


class MaildirOutbox(ClosingSession):
    """The outbox in OUTBOX_DIR, used as a session is: for development, without a relay."""

    def __init__(self) -> None:
        self._folder = Path(current_app.config["OUTBOX_DIR"])
        self._maildir: mailbox.Maildir | None = None  # created with the first message

    def send(
        self,
        recipients: Sequence[str],
        message: ReadyMessage,
        *,
        before_data: Callable[[], None] = do_nothing,
        while_server_reads: Callable[[], None] = do_nothing,
    ) -> str:
        """Store `message` (its recipients are in its To header); the same hooks as
        SmtpSession.send, run in the same order."""
        before_data()
        if self._maildir is None:
            self._maildir = mailbox.Maildir(self._folder, create=True)
        self._maildir.add(message.raw)
        while_server_reads()
        return "250 written to the outbox"

    def discard(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_session() -> SmtpSession | MaildirOutbox:
    """A session with the SMTP relay when SMTP_HOST is set, else the Maildir outbox."""
    return SmtpSession() if current_app.config["SMTP_HOST"] else MaildirOutbox()


def _deliver_prepared(prepared: Sequence[_Prepared]) -> None:
    with open_session() as session:
        for recipients, message in prepared:
            session.send(recipients, message)


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


def deliver_ready(recipient: str, message: ReadyMessage) -> None:
    """Send one message built elsewhere (an announcement's test) to one address."""
    _deliver_prepared([([recipient], message)])


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
