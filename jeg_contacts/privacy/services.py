"""Personal-data requests, one implementation for the contact's own preference page and for
the secretariat: a copy of everything stored about a contact, and erasure.

Staff requests do exactly what the contact could do from their preferences page, and are
audited under the staff member's name."""

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from jeg_contacts.audit import services as audit
from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus, ErasedAddress
from jeg_contacts.contacts.services import (
    DETAIL_FIELDS,
    STAFF_CONSENT_ACTIONS,
    email_hash,
    is_erased_address,
    new_link_secret,
    record_consent,
)
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailer.transports import forget_mail_to
from jeg_contacts.mailing.models import Delivery
from jeg_contacts.privacy.erasure import discard_uploads_holding
from jeg_contacts.signup.models import SignupRequest
from jeg_contacts.signup.services import SELF_SERVICE


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def contact_data_export(contact: Contact) -> dict[str, Any]:
    """Everything stored about a contact, as one JSON-ready document."""
    organisation = contact.organisation
    return {
        "exported_at": utcnow().isoformat(),
        "contact": {
            "salutation": contact.salutation,
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "email": contact.email,
            **{detail.name: getattr(contact, detail.name) for detail in DETAIL_FIELDS},
            "country": contact.country,
            "language": contact.language,
            "status": contact.status.value,
            "created_at": _iso(contact.created_at),
            "confirmed_at": _iso(contact.confirmed_at),
            "updated_at": _iso(contact.updated_at),
        },
        "organisation": None
        if organisation is None
        else {
            "name": organisation.name,
            "stakeholder_type": organisation.stakeholder_type.value,
            "country": organisation.country,
            "website": organisation.website,
        },
        "topics": [
            {"slug": topic.slug, "label": topic.label(contact.language)} for topic in contact.topics
        ],
        "consent_log": [
            {
                "at": _iso(event.at),
                "action": event.action.value,
                "wording_version": event.wording_version,
                "source": event.source,
                "detail": event.detail,
            }
            for event in contact.consent_events
        ],
    }


# What the audit log still says about an erased contact: the non-identifying facts the consent
# log keeps too. Every other field is blanked, including ones added later: failing safe.
AUDIT_FIELDS_KEPT_AFTER_ERASURE = frozenset({"status", "language", "topics"})


def _erase_from_audit_log(contact: Contact) -> set[str]:
    """Blank the contact's data in the audit log, the searches staff typed to find them
    included; returns every address it had."""
    organisation = contact.organisation
    found = audit.erase_person(
        "contact",
        contact.id,
        # The fields whose values summaries quote ("Edited Ana Silva", "Organisation X merged").
        quoted={
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "email": contact.email,
            **{detail.name: getattr(contact, detail.name) for detail in DETAIL_FIELDS},
            "organisation": organisation.name if organisation else None,
        },
        kept=AUDIT_FIELDS_KEPT_AFTER_ERASURE,
    )
    for address in found["email"]:
        audit.erase_address(address, "contact")
    # What staff typed into directory searches to find them, kept in the filters of exports
    # and bulk actions: any of their names, or the part of an address before the @-sign.
    audit.erase_searched_names(
        [
            *found["given_name"],
            *found["family_name"],
            *(address.partition("@")[0] for address in found["email"]),
        ],
        "contact",
    )
    return found["email"]


def _erase_from_delivery_replies(contact_id: int, addresses: Iterable[str]) -> None:
    """Blank the addresses in mail servers' replies to this contact's deliveries
    ("550 5.1.1 <ana@example.org>: Recipient address rejected")."""
    for address in addresses:
        replies = db.session.scalars(
            sa.select(Delivery).where(
                Delivery.contact_id == contact_id,
                sa.func.lower(Delivery.last_reply).contains(address.casefold(), autoescape=True),
            )
        )
        for delivery in replies:
            delivery.last_reply = re.sub(
                re.escape(address), audit.ERASED, delivery.last_reply, flags=re.IGNORECASE
            )


# In a staff consent event's detail ("basis: <statement>; status: ...; topics: ...; language:
# ..."), the statement: everything before the generated tail, whatever the statement holds.
_STATEMENT_IN_DETAIL = re.compile(r"^basis: .*(?=; status: \w+; topics: [^;]*; language: \w*$)")


def _erase_consent_statements(contact: Contact) -> None:
    """Blank what staff wrote about the contact in their consent log: free text about one
    person, which may name them. Who added them, how, and with what status stay."""
    for event in contact.consent_events:
        if event.action in STAFF_CONSENT_ACTIONS and event.detail:
            event.detail = _STATEMENT_IN_DETAIL.sub("basis: (erased)", event.detail)


def erase_contact(contact: Contact, source: str) -> None:
    """Remove a contact's personal data for good, keeping only a hash of the address; what the
    audit log and mail servers' replies quote of it is blanked in the same transaction, and
    once it commits, their mail in the outbox and the import uploads holding them are deleted
    (_forget_erased)."""
    if contact.status is ContactStatus.ERASED:
        return
    # Before the values are cleared: they are what to look for.
    addresses = _erase_from_audit_log(contact)
    _erase_from_delivery_replies(contact.id, addresses)
    _erase_consent_statements(contact)
    if contact.email and not is_erased_address(contact.email):
        db.session.add(ErasedAddress(email_hash=email_hash(contact.email)))
    # Details proposed by sign-ups and waiting for this address's confirmation are theirs too.
    db.session.execute(sa.delete(SignupRequest).where(SignupRequest.contact_id == contact.id))
    contact.salutation = None
    contact.given_name = ""
    contact.family_name = ""
    for detail in DETAIL_FIELDS:
        setattr(contact, detail.name, None)
    contact.email = None
    contact.email_key = None
    contact.country = None
    contact.organisation = None
    contact.topics = []
    contact.status = ContactStatus.ERASED
    contact.link_secret = new_link_secret()
    record_consent(contact, ConsentAction.ERASE, source)
    _forget_after_commit(addresses)


# Addresses erased in the current transaction, whose files go once it commits.
_ERASED = "jeg_contacts.erased_addresses"


def _forget_after_commit(addresses: Iterable[str]) -> None:
    session = db.session()
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_ERASED, set()).update(addresses)


@sa.event.listens_for(Session, "after_commit")
def _forget_erased(session: Session) -> None:
    """Once an erasure is durable (files follow the data, never lead it): delete the mail
    kept for the person and the import uploads holding them, then rid SQLite's files of the
    old pages."""
    addresses = session.info.pop(_ERASED, None)
    if addresses is None:
        return
    steps = {
        "the outbox": lambda: forget_mail_to(addresses),
        "the import uploads": lambda: discard_uploads_holding(addresses),
        "SQLite's write-ahead log": _checkpoint_sqlite,
    }
    for where, step in steps.items():
        try:
            step()
        except Exception:
            # The erasure is committed; a 500 would tell the person it failed. The log says
            # what is left to clear by hand.
            current_app.logger.exception("erasure: %s could not be cleared", where)


@sa.event.listens_for(Session, "after_soft_rollback")
def _keep_files(session: Session, previous_transaction: object) -> None:
    session.info.pop(_ERASED, None)


def _checkpoint_sqlite() -> None:
    """Copy SQLite's write-ahead log into the database file and empty it. The log keeps the
    pages as they were before the erasure until a checkpoint; secure_delete (set on every
    connection) zeroes what the new pages no longer hold."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        busy, _frames, _copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        # A reader held an older snapshot past the busy timeout; the next checkpoint (SQLite
        # makes one every 1,000 pages) copies the pages, and the log is reused from its start.
        current_app.logger.warning("erasure: the SQLite write-ahead log could not be emptied")


def erase_self(contact: Contact) -> None:
    """The contact's own erasure, from their preferences page."""
    erase_contact(contact, SELF_SERVICE)


def data_for_request(contact: Contact) -> dict[str, Any]:
    """The self-service JSON document for this contact, with the download audited."""
    document = contact_data_export(contact)
    audit.record(
        "contact.data_exported",
        "contact",
        contact.id,
        "Downloaded everything stored about this contact (personal-data request)",
    )
    db.session.flush()
    return document


def erase_on_request(contact: Contact, staff_email: str) -> None:
    """Erase the contact as self-service erasure does, recording who did it on their behalf."""
    if contact.status is ContactStatus.ERASED:
        raise ValidationFailed("", "This contact's data was already erased.")
    erase_contact(contact, f"secretariat ({staff_email}), at the contact's request"[:200])
    # No name or address in the entry: it outlives the data it would otherwise repeat.
    audit.record(
        "contact.erased",
        "contact",
        contact.id,
        "Erased at the contact's request (personal-data request)",
    )
    db.session.flush()
