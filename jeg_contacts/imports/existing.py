"""What the directory already holds, looked up a chunk of rows at a time: the contacts with the
file's addresses, the erased addresses among them, and every organisation."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ErasedAddress, Organisation, subscriptions
from jeg_contacts.contacts.services import DETAIL_FIELDS, email_hash, snapshot_values
from jeg_contacts.extensions import db
from jeg_contacts.imports.mapping import Vocabulary
from jeg_contacts.imports.rows import Base


@dataclass(slots=True)
class Existing:
    """A contact already in the directory: the values its row starts from, and its audited
    fields before the import (to tell what the row changes)."""

    id: int
    base: Base
    snapshot: dict[str, Any]


def known_organisations() -> dict[tuple[str, str], sa.Row]:
    """Every organisation by (normalised name, country)."""
    return {
        (row.normalised_name, row.country or ""): row
        for row in db.session.execute(
            sa.select(
                Organisation.id,
                Organisation.name,
                Organisation.normalised_name,
                Organisation.stakeholder_type,
                Organisation.country,
                Organisation.website,
            )
        )
    }


def erased_keys(keys: set[str]) -> set[str]:
    """The email keys among `keys` whose owner asked for their data to be erased."""
    if not keys:
        return set()
    hashes = {email_hash(key): key for key in keys}
    found = db.session.scalars(
        sa.select(ErasedAddress.email_hash).where(ErasedAddress.email_hash.in_(hashes))
    )
    return {hashes[value] for value in found}


def existing_contacts(
    keys: set[str], vocabulary: Vocabulary, *, with_topics: bool
) -> dict[str, Existing]:
    """The contacts with these email keys, by key; their topics only `with_topics` (an
    import that leaves existing contacts alone never compares them)."""
    if not keys:
        return {}
    rows = _contact_rows(keys)
    topics: dict[int, list[int]] = {row.id: [] for row in rows}
    if rows and with_topics:
        for contact_id, topic_id in db.session.execute(
            sa.select(subscriptions.c.contact_id, subscriptions.c.topic_id).where(
                subscriptions.c.contact_id.in_(topics)
            )
        ):
            topics[contact_id].append(topic_id)
    found = {}
    for row in rows:
        topic_ids = sorted(topics[row.id], key=vocabulary.topic_order)
        snapshot = snapshot_values(
            row._mapping,
            status=row.status,
            organisation=row.name,
            organisation_country=row.organisation_country,
            topic_slugs=(vocabulary.topics[i].slug for i in topic_ids),
        )
        found[row.email_key] = Existing(row.id, _base(row, topic_ids, vocabulary), snapshot)
    return found


def _contact_rows(keys: set[str]) -> list[sa.Row]:
    return db.session.execute(
        sa.select(
            Contact.id,
            Contact.email_key,
            Contact.email,
            Contact.salutation,
            Contact.given_name,
            Contact.family_name,
            *(getattr(Contact, detail.name) for detail in DETAIL_FIELDS),
            Contact.country,
            Contact.language,
            Contact.status,
            Organisation.name,
            Organisation.stakeholder_type,
            Organisation.country.label("organisation_country"),
            Organisation.website,
        )
        .outerjoin(Organisation, Contact.organisation_id == Organisation.id)
        .where(Contact.email_key.in_(keys))
    ).all()


def _base(row: sa.Row, topic_ids: list[int], vocabulary: Vocabulary) -> Base:
    """What an existing contact's row starts from: its values as they are."""
    active = tuple(i for i in topic_ids if vocabulary.topics[i].active)
    return Base(
        organisation_name=row.name or "",
        stakeholder_type=row.stakeholder_type.value if row.stakeholder_type else "",
        organisation_country=row.organisation_country or "",
        organisation_website=row.website or "",
        salutation=row.salutation or "",
        given_name=row.given_name,
        family_name=row.family_name,
        details={detail.name: row._mapping[detail.name] or "" for detail in DETAIL_FIELDS},
        country=row.country or "",
        language=row.language,
        topic_ids=active,
        archived_topic_ids=tuple(i for i in topic_ids if i not in active),
        status=row.status,
    )
