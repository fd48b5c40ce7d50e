"""Signed links to a contact's own pages: the revocable preference/unsubscribe link, which
every announcement carries, and the expiring link confirming a pending contact's details.

The link of a sign-up request (signup.tokens) is built from the same signature."""

import base64
import hmac
from datetime import datetime

from flask import current_app

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.errors import InvalidLink
from jeg_contacts.extensions import db, utcnow

_MAX_TOKEN_LENGTH = 200


def signature(*parts: object) -> str:
    """The signature of a link's parts, keyed with SECRET_KEY."""
    key = current_app.config["SECRET_KEY"].encode()
    message = "|".join(str(part) for part in parts).encode()
    digest = hmac.digest(key, message, "sha256")  # one-shot: C speed, for bulk sends
    return base64.urlsafe_b64encode(digest[:24]).decode()


def split_token(token: str, count: int) -> list[str]:
    """The `count` dot-separated parts of a token; InvalidLink when it has another shape."""
    parts = token.split(".") if len(token) <= _MAX_TOKEN_LENGTH else []
    if len(parts) != count or not all(part.isascii() for part in parts):
        raise InvalidLink("malformed link")
    return parts


def record_id(raw: str) -> int:
    """A row id from a link; anything but a plain number a database can hold is malformed."""
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidLink("malformed link")
    return int(raw)


def linked_contact(raw_id: str) -> Contact:
    """The contact a link names; InvalidLink when there is none, or it was erased."""
    contact = db.session.get(Contact, record_id(raw_id))
    if contact is None or contact.status is ContactStatus.ERASED:
        raise InvalidLink("no such contact")
    return contact


def confirm_token(contact: Contact, issued_at: datetime | None = None) -> str:
    """The token of the link confirming a pending contact's own details, valid for
    CONFIRM_LINK_MAX_AGE_DAYS from `issued_at`."""
    issued = int((issued_at or utcnow()).timestamp())
    return f"{contact.id}.{issued}.{signature('confirm', contact.id, issued, contact.email_key)}"


def manage_token(contact: Contact) -> str:
    """The token of a contact's preference and unsubscribe links (no expiry, revocable)."""
    return manage_token_for(contact.id, contact.link_secret)


def manage_token_for(contact_id: int, link_secret: str) -> str:
    """manage_token() from the two columns it needs, for bulk senders that load no objects."""
    return f"{contact_id}.{signature('manage', contact_id, link_secret)}"


def contact_from_manage_token(token: str) -> Contact:
    """The contact a preference/unsubscribe token belongs to; InvalidLink if revoked or forged."""
    raw_id, given = split_token(token, 2)
    contact = linked_contact(raw_id)
    expected = signature("manage", contact.id, contact.link_secret)
    if not hmac.compare_digest(expected, given):
        raise InvalidLink("bad signature")
    return contact
