"""Signed links: expiring confirmation links, and revocable preference/unsubscribe links."""

import base64
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.errors import ExpiredLink, InvalidLink
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.signup.models import SignupRequest

_MAX_TOKEN_LENGTH = 200


def _signature(*parts: object) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = "|".join(str(part) for part in parts).encode()
    digest = hmac.digest(key, message, "sha256")  # one-shot: C speed, for bulk sends
    return base64.urlsafe_b64encode(digest[:24]).decode()


def _split(token: str, count: int) -> list[str]:
    parts = token.split(".") if len(token) <= _MAX_TOKEN_LENGTH else []
    if len(parts) != count or not all(part.isascii() for part in parts):
        raise InvalidLink("malformed link")
    return parts


def _record_id(raw: str) -> int:
    """A row id from a link; anything but a plain number a database can hold is malformed."""
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidLink("malformed link")
    return int(raw)


def _contact(raw_id: str) -> Contact:
    contact = db.session.get(Contact, _record_id(raw_id))
    if contact is None or contact.status is ContactStatus.ERASED:
        raise InvalidLink("no such contact")
    return contact


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation link is for: the contact, and the sign-up request it was mailed for
    (None for the link of a new address, whose details are already the contact's own).
    `spent` is a genuine request link whose request is gone: used, or dropped as expired."""

    contact: Contact
    request: SignupRequest | None = None
    spent: bool = False


def confirm_token(
    contact: Contact, request: SignupRequest | None = None, issued_at: datetime | None = None
) -> str:
    """A confirmation link token, valid for CONFIRM_LINK_MAX_AGE_DAYS from `issued_at`
    (a request's link: from the request's creation)."""
    if request is None:
        issued = int((issued_at or utcnow()).timestamp())
        signature = _signature("confirm", contact.id, issued, contact.email_key)
        return f"{contact.id}.{issued}.{signature}"
    issued = int(request.created_at.timestamp())
    signature = _signature("confirm-request", contact.id, request.id, issued, contact.email_key)
    return f"{contact.id}.{request.id}.{issued}.{signature}"


def confirmation_from_token(token: str) -> Confirmation:
    """What a confirmation token was issued for; InvalidLink or ExpiredLink otherwise."""
    parts = _split(token, 4) if token.count(".") == 3 else _split(token, 3)
    raw_id, *raw_request, raw_issued, signature = parts
    if not raw_issued.isdigit() or len(raw_issued) > 18:
        raise InvalidLink("malformed link")
    request_ids = [_record_id(raw) for raw in raw_request]
    contact = _contact(raw_id)
    issued = int(raw_issued)
    if request_ids:
        request_id = request_ids[0]
        expected = _signature("confirm-request", contact.id, request_id, issued, contact.email_key)
    else:
        expected = _signature("confirm", contact.id, issued, contact.email_key)
    if not hmac.compare_digest(expected, signature):
        raise InvalidLink("bad signature")
    max_age = timedelta(days=current_app.config["CONFIRM_LINK_MAX_AGE_DAYS"])
    if utcnow().timestamp() - issued > max_age.total_seconds():
        raise ExpiredLink(contact.id)
    if not request_ids:
        return Confirmation(contact)
    request = db.session.get(SignupRequest, request_id)
    if (
        request is None
        or request.contact_id != contact.id
        or int(request.created_at.timestamp()) != issued
    ):
        return Confirmation(contact, spent=True)
    return Confirmation(contact, request)


def manage_token(contact: Contact) -> str:
    """The token of a contact's preference and unsubscribe links (no expiry, revocable)."""
    return manage_token_for(contact.id, contact.link_secret)


def manage_token_for(contact_id: int, link_secret: str) -> str:
    """manage_token() from the two columns it needs, for bulk senders that load no objects."""
    return f"{contact_id}.{_signature('manage', contact_id, link_secret)}"


def contact_from_manage_token(token: str) -> Contact:
    """The contact a preference/unsubscribe token belongs to; InvalidLink if revoked or forged."""
    raw_id, signature = _split(token, 2)
    contact = _contact(raw_id)
    expected = _signature("manage", contact.id, contact.link_secret)
    if not hmac.compare_digest(expected, signature):
        raise InvalidLink("bad signature")
    return contact
