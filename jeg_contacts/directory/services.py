"""The stakeholder directory: finding contacts, and the secretariat's changes to one of them
(changes to many at once are in `bulk`).

Which contacts a page shows comes from `jeg_contacts.audiences`, so announcements and exports
select contacts exactly as the directory shows them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from jeg_contacts.audiences.services import (
    ContactFilter,
    filter_contacts,
    normalise_sort,
    order_contacts,
    sort_contacts,
)
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.audit.services import changes_between, record
from jeg_contacts.contacts.mail import send_confirmation
from jeg_contacts.contacts.models import (
    ConsentAction,
    Contact,
    ContactStatus,
    Organisation,
)
from jeg_contacts.contacts.services import (
    ProfileData,
    apply_profile,
    audit_snapshot,
    consent_basis,
    describe_subscription,
    is_erased_address,
    new_link_secret,
    record_consent,
)
from jeg_contacts.directory import models  # noqa: F401  (the directory's indexes)
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.text import email_key, normalise_email

PER_PAGE = 50

# Statuses the secretariat may set by hand; "pending" only comes from a sign-up and "erased"
# only from the contact's own request.
STAFF_STATUSES = (ContactStatus.ACTIVE, ContactStatus.UNSUBSCRIBED, ContactStatus.BOUNCED)
# Someone added by hand confirms by email, unless staff say why they agreed to be contacted.
NEW_CONTACT_STATUSES = (ContactStatus.PENDING, ContactStatus.ACTIVE)
BASIS_NEEDED = (
    "Say why this person agreed to be contacted (for example: “they asked for JEG news at the "
    "2025 workshop”). It is kept in their consent log; without it, add them as pending, so "
    "that they confirm by email."
)


# --- Finding contacts ---------------------------------------------------------------------


def _in_page_order(contact_filter: ContactFilter, sort: str) -> sa.Select:
    """Ids of the filter's matches, in the order the directory pages them."""
    sort = normalise_sort(sort)
    types = contact_filter.stakeholder_types
    if types and not contact_filter.q and sort.removeprefix("-") == "organisation":
        # Every match has an organisation of these types: stating the types on the joined
        # organisation rather than as the filter's subquery gives the same rows, but lets the
        # database walk those organisations in name order and stop after a page. (Given the
        # subquery, SQLite fetches every such organisation by id and sorts all its contacts.)
        query = filter_contacts(
            sa.select(Contact.id), replace(contact_filter, stakeholder_types=())
        )
        query = query.join(Organisation, Contact.organisation_id == Organisation.id).where(
            Organisation.stakeholder_type.in_(types)
        )
        return order_contacts(query, sort)
    matches = filter_contacts(sa.select(Contact.id), contact_filter)
    return sort_contacts(matches, sort, walk_organisations=not contact_filter.q)


def directory_page(contact_filter: ContactFilter, sort: str, page: int) -> Any:
    """One page of the directory, with organisations and topics loaded for its rows."""
    # Count, sort and skip over narrow rows of ids, then load only the contacts shown:
    # sorting whole rows would carry every column of every match through the sort.
    ids = _in_page_order(contact_filter, sort)
    pagination = db.paginate(ids, page=page, per_page=PER_PAGE, count=False, error_out=False)
    if pagination.page == 1 and len(pagination.items) < PER_PAGE:
        pagination.total = len(pagination.items)  # a short first page is all there is
    elif contact_filter.is_empty:
        pagination.total = _count_not_erased()
    else:
        pagination.total = count_rows(filter_contacts(sa.select(Contact.id), contact_filter))
    if pagination.items:
        contacts = db.session.scalars(
            sa.select(Contact)
            .where(Contact.id.in_(pagination.items))
            .options(selectinload(Contact.organisation), selectinload(Contact.topics))
        )
        by_id = {contact.id: contact for contact in contacts}
        pagination.items = [by_id[contact_id] for contact_id in pagination.items]
    return pagination


def _count_not_erased() -> int:
    """How many contacts the empty filter matches: everyone but the erased."""
    # Everyone less the erased, rather than testing every row for "not erased": SQLite
    # counts a whole table from its pages alone, and the erased from their status index.
    everyone = sa.select(sa.func.count()).select_from(Contact).scalar_subquery()
    erased = (
        sa.select(sa.func.count())
        .select_from(Contact)
        .where(Contact.status == ContactStatus.ERASED)
        .scalar_subquery()
    )
    return db.session.scalar(sa.select(everyone - erased)) or 0


def count_rows(query: sa.Select) -> int:
    """How many rows a query gives."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def has_contacts() -> bool:
    """Whether the directory holds anyone at all (to tell "no match" from "nothing yet")."""
    return db.session.scalar(sa.select(sa.exists().where(Contact.id.is_not(None)))) or False


# --- Changing one contact -----------------------------------------------------------------


class ContactChanged(Exception):
    """The contact was saved by someone else after the form was opened; nothing was saved."""


class DuplicateContact(ValidationFailed):
    """Another contact already has this address."""

    def __init__(self, existing_id: int) -> None:
        super().__init__("email", "Another contact already has this email address.")
        self.existing_id = existing_id


@dataclass(frozen=True)
class ContactData(ProfileData):
    """What the secretariat states about a contact: the sign-up fields, email and status."""

    email: str = ""
    status: str = ContactStatus.PENDING.value


def secretariat_source(staff_email: str) -> str:
    """How a consent event made by a staff member is recorded (the column holds 200)."""
    return f"secretariat ({staff_email})"[:200]


def added_by_source(staff_email: str) -> str:
    """How the consent event of a contact added by a staff member is recorded."""
    return f"added by {staff_email}"[:200]


def _available_email(raw: str, contact: Contact | None = None) -> str:
    """The normalised address, if no other contact has it and it was never erased."""
    email = normalise_email(raw)
    key = email_key(email)
    if contact is not None and contact.email_key == key:
        return email
    with db.session.no_autoflush:
        existing = db.session.scalar(sa.select(Contact.id).where(Contact.email_key == key))
    if existing is not None:
        raise DuplicateContact(existing)
    if is_erased_address(email):
        raise ValidationFailed(
            "email",
            "The owner of this address had their data erased; it cannot be added again. "
            "They can sign up again themselves.",
        )
    return email


def chosen_status(raw: str, allowed: Sequence[ContactStatus]) -> ContactStatus:
    """The status a form chose, if it is one of `allowed` (else ValidationFailed on "status")."""
    try:
        status = ContactStatus(raw)
    except ValueError:
        status = None
    if status not in allowed:
        raise ValidationFailed("status", "Choose a status from the list.")
    return status


def staff_statuses(current: ContactStatus) -> tuple[ContactStatus, ...]:
    """Statuses an editor may give a contact whose status is `current`."""
    if current is ContactStatus.PENDING:
        return (ContactStatus.PENDING, *STAFF_STATUSES)
    return STAFF_STATUSES


def consent_action_for(old: ContactStatus, new: ContactStatus) -> ConsentAction | None:
    """The consent event a status change means, if any (a bounce is not a consent matter)."""
    if new is ContactStatus.ACTIVE:
        return ConsentAction.CONFIRM if old is ContactStatus.PENDING else ConsentAction.RESUBSCRIBE
    if new is ContactStatus.UNSUBSCRIBED:
        return ConsentAction.UNSUBSCRIBE
    return None


def _set_status(contact: Contact, status: ContactStatus, staff_email: str) -> None:
    old = contact.status
    if status is old:
        return
    contact.status = status
    if status is ContactStatus.ACTIVE and contact.confirmed_at is None:
        contact.confirmed_at = utcnow()
    action = consent_action_for(old, status)
    if action is not None:
        detail = describe_subscription(contact) if status is ContactStatus.ACTIVE else None
        record_consent(contact, action, secretariat_source(staff_email), detail)


def _refuse_erased(contact: Contact) -> None:
    if contact.status is ContactStatus.ERASED:
        raise ValidationFailed("", "This contact's data was erased at their request.")


def _check_version(contact: Contact, expected_version: int | None) -> None:
    if expected_version != contact.version:
        raise ContactChanged()


def add_contact(data: ContactData, staff_email: str, *, basis: str = "") -> Contact:
    """Add a contact on someone's behalf: pending, they get the usual confirmation email;
    active, `basis` must say why they agreed to be contacted (ValidationFailed on "basis")."""
    email = _available_email(data.email)
    status = chosen_status(data.status, NEW_CONTACT_STATUSES)
    # Kept only for an active contact: a pending one will confirm by their own act.
    basis = consent_basis(basis, needed=BASIS_NEEDED) if status is ContactStatus.ACTIVE else ""
    contact = Contact(email=email, email_key=email_key(email), link_secret=new_link_secret())
    apply_profile(contact, data)
    contact.status = status
    if status is ContactStatus.ACTIVE:
        contact.confirmed_at = utcnow()
    db.session.add(contact)
    db.session.flush()
    # One event: who added them, and on what basis. Nothing that reads as their own sign-up
    # or confirmation, and no privacy notice: they saw none. A pending contact's
    # confirmation, if it comes, is recorded then.
    statement = f"basis: {basis}; " if basis else ""
    record_consent(
        contact,
        ConsentAction.ADDED_BY_STAFF,
        added_by_source(staff_email),
        f"{statement}status: {status.value}; {describe_subscription(contact)}",
    )
    changes = changes_between({}, audit_snapshot(contact))
    if basis:
        changes["basis"] = [None, basis]
    record(
        "contact.created",
        "contact",
        contact.id,
        f"Added {contact.full_name} as {status.value}",
        changes,
    )
    if status is ContactStatus.PENDING:
        send_confirmation(contact)
    return contact


def update_contact(
    contact: Contact, data: ContactData, *, expected_version: int | None, staff_email: str
) -> dict[str, list]:
    """Save the secretariat's edit of a contact, if nobody else saved it since the form was
    opened (else ContactChanged); returns what changed, as audited."""
    _refuse_erased(contact)
    _check_version(contact, expected_version)
    before = audit_snapshot(contact)
    email = _available_email(data.email, contact)
    status = chosen_status(data.status, staff_statuses(contact.status))
    apply_profile(contact, data)
    if contact.email_key != email_key(email):
        # Links already sent went to the old address: they must not manage the new one.
        contact.link_secret = new_link_secret()
    contact.email = email
    contact.email_key = email_key(email)
    subscription = (sorted(topic.slug for topic in contact.topics), contact.language)
    if subscription != (before["topics"], before["language"]):
        record_consent(
            contact,
            ConsentAction.PREFERENCES_CHANGED,
            secretariat_source(staff_email),
            describe_subscription(contact),
        )
    _set_status(contact, status, staff_email)
    changes = changes_between(before, audit_snapshot(contact))
    if changes:
        # Also bumps the version when only topics changed (no column of the row did).
        contact.updated_at = utcnow()
        record("contact.updated", "contact", contact.id, f"Edited {contact.full_name}", changes)
    db.session.flush()
    return changes


def change_status(
    contact: Contact, raw_status: str, *, expected_version: int | None, staff_email: str
) -> bool:
    """Set a contact's status by hand; returns False when it already had that status."""
    _refuse_erased(contact)
    _check_version(contact, expected_version)
    status = chosen_status(raw_status, STAFF_STATUSES)
    old = contact.status
    if status is old:
        return False
    _set_status(contact, status, staff_email)
    contact.updated_at = utcnow()
    record(
        "contact.status_changed",
        "contact",
        contact.id,
        f"Status of {contact.full_name}: {old.value} → {status.value}",
        {"status": [old.value, status.value]},
    )
    db.session.flush()
    return True


def contact_audit_entries(contact_id: int) -> list[AuditEntry]:
    """Every audit entry about one contact, newest first."""
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.entity_type == "contact", AuditEntry.entity_id == contact_id)
            .order_by(AuditEntry.id.desc())
        )
    )
