"""Confirmation links: a sign-up request's, and reading any confirmation token back.

The links every contact has (preferences, unsubscribe, a pending contact's confirmation)
are made in contacts.links."""

import hmac
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from jeg_contacts.contacts.links import linked_contact, record_id, signature, split_token
from jeg_contacts.contacts.models import Contact
from jeg_contacts.errors import ExpiredLink, InvalidLink
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.signup.models import SignupRequest


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation link is for: the contact, and the sign-up request it was mailed for
    (None for the link of a new address, whose details are already the contact's own).
    `spent` is a genuine request link whose request is gone: used, or dropped as expired."""

    contact: Contact
    request: SignupRequest | None = None
    spent: bool = False


def request_confirm_token(contact: Contact, request: SignupRequest) -> str:
    """The token of the link confirming a sign-up request, valid for
    CONFIRM_LINK_MAX_AGE_DAYS from the request's creation."""
    issued = int(request.created_at.timestamp())
    signed = signature("confirm-request", contact.id, request.id, issued, contact.email_key)
    return f"{contact.id}.{request.id}.{issued}.{signed}"


def confirmation_from_token(token: str) -> Confirmation:
    """What a confirmation token was issued for; InvalidLink or ExpiredLink otherwise."""
    parts = split_token(token, 4) if token.count(".") == 3 else split_token(token, 3)
    raw_id, *raw_request, raw_issued, given = parts
    if not raw_issued.isdigit() or len(raw_issued) > 18:
        raise InvalidLink("malformed link")
    request_ids = [record_id(raw) for raw in raw_request]
    contact = linked_contact(raw_id)
    issued = int(raw_issued)
    if request_ids:
        request_id = request_ids[0]
        expected = signature("confirm-request", contact.id, request_id, issued, contact.email_key)
    else:
        expected = signature("confirm", contact.id, issued, contact.email_key)
    if not hmac.compare_digest(expected, given):
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
