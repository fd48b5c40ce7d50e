"""Bulk actions of the directory: one change (a topic added or removed, a status set) to
every contact a filter or a tick selects.

Thousands of contacts change in a few set-based statements; their consent events and audit
entries are the ones `contacts` and `audit` record one at a time, inserted in bulk.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from jeg_contacts.audiences.services import ContactFilter, describe_filter, filter_contacts
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.audit.services import Actor, entry_values, record
from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    Topic,
    subscriptions,
)
from jeg_contacts.contacts.services import consent_values
from jeg_contacts.directory.services import (
    STAFF_STATUSES,
    chosen_status,
    consent_action_for,
    count_rows,
    secretariat_source,
)
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow

# Bulk writes go in slices, keeping each statement's parameters under every database's limit.
BULK_SLICE = 500


class BulkAction(StrEnum):
    ADD_TOPIC = "add_topic"
    REMOVE_TOPIC = "remove_topic"
    SET_STATUS = "set_status"

    @property
    def label(self) -> str:
        return BULK_ACTION_LABELS[self]


BULK_ACTION_LABELS = {
    BulkAction.ADD_TOPIC: "Add a topic",
    BulkAction.REMOVE_TOPIC: "Remove a topic",
    BulkAction.SET_STATUS: "Set the status",
}


class SelectionChanged(Exception):
    """The contacts a confirmed bulk action would change are no longer those confirmed."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} contacts would change now")
        self.count = count


@dataclass(frozen=True)
class BulkChange:
    """One change to apply to many contacts."""

    action: BulkAction
    topic: Topic | None = None
    status: ContactStatus | None = None

    def describe(self) -> str:
        if self.action is BulkAction.ADD_TOPIC:
            return f"add topic “{self.topic.label_en}”"
        if self.action is BulkAction.REMOVE_TOPIC:
            return f"remove topic “{self.topic.label_en}”"
        return f"set status to {self.status.value}"


def bulk_change(action: str | None, topic_id: int | None, status: str | None) -> BulkChange:
    """Validate a bulk action as chosen in the form."""
    try:
        chosen = BulkAction(action or "")
    except ValueError:
        raise ValidationFailed("action", "Choose what to do.") from None
    if chosen is BulkAction.SET_STATUS:
        try:
            return BulkChange(chosen, status=chosen_status(status or "", STAFF_STATUSES))
        except ValidationFailed as error:
            raise ValidationFailed("new_status", error.message) from None
    topic = db.session.get(Topic, topic_id) if topic_id else None
    if topic is None or (chosen is BulkAction.ADD_TOPIC and not topic.active):
        raise ValidationFailed("topic_id", "Choose a topic from the list.")
    return BulkChange(chosen, topic=topic)


def selected_contacts(contact_filter: ContactFilter, ids: Sequence[int] = ()) -> sa.Select:
    """Ids of the contacts a bulk action covers: the filter's matches, or only the ticked
    ones among them; erased contacts never."""
    query = filter_contacts(sa.select(Contact.id), contact_filter).where(
        Contact.status != ContactStatus.ERASED
    )
    if ids:
        query = query.where(Contact.id.in_(ids))
    return query


def _contacts_to_change(
    contact_filter: ContactFilter, ids: Sequence[int], change: BulkChange
) -> sa.Select:
    query = selected_contacts(contact_filter, ids)
    if change.action is BulkAction.SET_STATUS:
        return query.where(Contact.status != change.status)
    subscribed = (
        sa.exists()
        .where(subscriptions.c.contact_id == Contact.id)
        .where(subscriptions.c.topic_id == change.topic.id)
    )
    return query.where(~subscribed if change.action is BulkAction.ADD_TOPIC else subscribed)


@dataclass(frozen=True)
class BulkPreview:
    selected: int  # contacts covered by the selection
    changing: int  # of which the action would change


def count_selected(contact_filter: ContactFilter, ids: Sequence[int] = ()) -> int:
    return count_rows(selected_contacts(contact_filter, ids))


def preview_bulk_change(
    contact_filter: ContactFilter, ids: Sequence[int], change: BulkChange
) -> BulkPreview:
    """How many contacts are selected, and how many the change would actually change."""
    return BulkPreview(
        selected=count_selected(contact_filter, ids),
        changing=count_rows(_contacts_to_change(contact_filter, ids, change)),
    )


def _slices(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), BULK_SLICE):
        yield values[start : start + BULK_SLICE]


def _topic_slugs(contact_ids: Sequence[int]) -> dict[int, list[str]]:
    slugs: dict[int, list[str]] = {contact_id: [] for contact_id in contact_ids}
    for part in _slices(contact_ids):
        rows = db.session.execute(
            sa.select(subscriptions.c.contact_id, Topic.slug)
            .join(Topic, Topic.id == subscriptions.c.topic_id)
            .where(subscriptions.c.contact_id.in_(part))
        )
        for contact_id, slug in rows:
            slugs[contact_id].append(slug)
    return slugs


def _bump_versions(contact_ids: Sequence[int], now: datetime) -> None:
    # Open edit forms of these contacts become stale, as after any other save.
    db.session.execute(
        sa.update(Contact)
        .where(Contact.id.in_(contact_ids))
        .values(version=Contact.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )


# What a bulk action did to each contact, for its consent log and its audit entry:
# (contact id, consent action, detail) and (contact id, audit action, changes).
Consents = list[tuple[int, ConsentAction, str | None]]
Audits = list[tuple[int, str, dict[str, list]]]


def _bulk_set_status(
    old_statuses: dict[int, ContactStatus], new: ContactStatus, now: datetime
) -> tuple[Consents, Audits]:
    values: dict[str, Any] = {"status": new, "version": Contact.version + 1, "updated_at": now}
    if new is ContactStatus.ACTIVE:
        values["confirmed_at"] = sa.func.coalesce(Contact.confirmed_at, now)
    for part in _slices(list(old_statuses)):
        # One statement per slice: the status sits in several indexes, so each rewrite counts.
        db.session.execute(
            sa.update(Contact)
            .where(Contact.id.in_(part))
            .values(values)
            .execution_options(synchronize_session=False)
        )
    consents: Consents = []
    audits: Audits = []
    for contact_id, old in old_statuses.items():
        action = consent_action_for(old, new)
        if action is not None:
            consents.append((contact_id, action, None))
        audits.append((contact_id, "contact.status_changed", {"status": [old.value, new.value]}))
    return consents, audits


def _bulk_change_topic(
    contact_ids: Sequence[int], topic: Topic, adding: bool, now: datetime
) -> tuple[Consents, Audits]:
    before = _topic_slugs(contact_ids)
    for part in _slices(contact_ids):
        if adding:
            db.session.execute(
                subscriptions.insert(),
                [{"contact_id": id_, "topic_id": topic.id, "subscribed_at": now} for id_ in part],
            )
        else:
            db.session.execute(
                subscriptions.delete().where(
                    subscriptions.c.topic_id == topic.id, subscriptions.c.contact_id.in_(part)
                )
            )
        _bump_versions(part, now)
    detail = f"{'added' if adding else 'removed'} topic: {topic.slug}"
    consents: Consents = []
    audits: Audits = []
    for contact_id in contact_ids:
        old = sorted(before[contact_id])
        new = sorted([*old, topic.slug]) if adding else [s for s in old if s != topic.slug]
        consents.append((contact_id, ConsentAction.PREFERENCES_CHANGED, detail))
        audits.append((contact_id, "contact.topics_changed", {"topics": [old, new]}))
    return consents, audits


def _insert_logs(
    consents: Consents,
    audits: Audits,
    *,
    summary: AuditEntry,
    source: str,
    change: BulkChange,
    now: datetime,
) -> None:
    """Insert each contact's consent event and audit entry, as record_consent and record
    would add them, under the actor of the action's `summary` entry (flushed)."""
    actor = Actor(summary.user, summary.actor)
    stamp = {"at": now}
    # Core inserts: the ORM's bulk insert would fetch back every new id, for nothing.
    if consents:
        db.session.execute(
            sa.insert(ConsentEvent.__table__),
            [
                consent_values(action, source, detail) | stamp | {"contact_id": contact_id}
                for contact_id, action, detail in consents
            ],
        )
    entry_stamp = stamp | {"user_id": summary.user_id}
    summary_text = f"Bulk action: {change.describe()}"
    db.session.execute(
        sa.insert(AuditEntry.__table__),
        [
            entry_values(actor, action, "contact", contact_id, summary_text, changes) | entry_stamp
            for contact_id, action, changes in audits
        ],
    )


def apply_bulk_change(
    contact_filter: ContactFilter,
    ids: Sequence[int],
    change: BulkChange,
    *,
    staff_email: str,
    expected_count: int | None = None,
) -> int:
    """Apply `change` to every selected contact it changes, with set-based writes, one audit
    entry per changed contact and one for the whole action; returns how many changed.

    With `expected_count`, refuses (SelectionChanged) when another number would change than
    the person confirmed."""
    rows = db.session.execute(
        _contacts_to_change(contact_filter, ids, change)
        .add_columns(Contact.status)
        .order_by(Contact.id)
    ).all()
    if expected_count is not None and len(rows) != expected_count:
        raise SelectionChanged(len(rows))
    if not rows:
        return 0
    now = utcnow()
    if change.action is BulkAction.SET_STATUS:
        consents, audits = _bulk_set_status(
            {row.id: row.status for row in rows}, change.status, now
        )
    else:
        consents, audits = _bulk_change_topic(
            [row.id for row in rows], change.topic, change.action is BulkAction.ADD_TOPIC, now
        )
    summary = record(
        "contact.bulk_action",
        "contact",
        None,
        f"Bulk action: {change.describe()} for {len(rows):,} contacts",
        {"selection": describe_filter(contact_filter), "contacts": len(rows)}
        | ({"ticked": len(ids)} if ids else {}),
    )
    db.session.flush()
    source = secretariat_source(staff_email)
    _insert_logs(consents, audits, summary=summary, source=source, change=change, now=now)
    # Contacts already loaded in this session no longer match their rows.
    db.session.expire_all()
    return len(rows)
