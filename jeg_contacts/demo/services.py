"""Writing synthetic stakeholders to the database, fast enough for 100,000 contacts.

Rows go in with Core bulk inserts in chunks, not as ORM objects: that is what makes it fast, and
it means the ORM listeners do not run, so every derived column (search name, version, email key,
normalised organisation name) is filled here.
"""

import random
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa

from jeg_contacts.contacts.cli import seed_topics
from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    Organisation,
    Topic,
    search_key,
    subscriptions,
)
from jeg_contacts.contacts.services import PRIVACY_NOTICE_VERSION
from jeg_contacts.demo.world import ContactDraft, DemoWorld, OrganisationDraft
from jeg_contacts.extensions import db, utcnow

SOURCE = "demo data"
CHUNK_SIZE = 5000

_contacts = Contact.__table__
_organisations = Organisation.__table__
_consent_events = ConsentEvent.__table__


class NoTopics(Exception):
    """Every topic is archived, so demo contacts would have nothing to subscribe to."""


def database_has_contacts() -> bool:
    return db.session.scalar(sa.select(Contact.id).limit(1)) is not None


def generate_demo_data(
    contact_count: int,
    seed: int = 0,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Add `contact_count` synthetic contacts (and the organisations they work for); returns how
    many were created. The same seed on the same database gives the same people.

    Existing organisations with the same name and country are reused; addresses already in
    use are never repeated. Topics are seeded if there are none; NoTopics if all are archived.
    Does not commit. `progress` is called with each chunk's size.
    """
    if contact_count < 0:
        raise ValueError("contact_count cannot be negative")
    topic_ids = _active_topic_ids()
    world = DemoWorld(
        random.Random(seed),
        list(topic_ids),
        now or utcnow(),
        taken_emails=set(
            db.session.scalars(sa.select(Contact.email_key).where(Contact.email_key.isnot(None)))
        ),
    )
    organisation_ids: dict[tuple[str, str | None], int] = {
        (name, country): organisation_id
        for organisation_id, name, country in db.session.execute(
            sa.select(Organisation.id, Organisation.normalised_name, Organisation.country)
        )
    }
    new_organisations: set[int] = set()
    # Organisations created here date from their first contact's sign-up.
    first_signup: dict[int, datetime] = {}
    created = 0
    while created < contact_count:
        drafts = [world.contact() for _ in range(min(CHUNK_SIZE, contact_count - created))]
        new_organisations.update(_insert_organisations(drafts, organisation_ids))
        contact_ids = _insert_contacts(drafts, organisation_ids)
        _insert_subscriptions_and_consent(drafts, contact_ids, topic_ids)
        for draft in drafts:
            organisation_id = organisation_ids[draft.organisation.key]
            if organisation_id in new_organisations and (
                organisation_id not in first_signup
                or draft.created_at < first_signup[organisation_id]
            ):
                first_signup[organisation_id] = draft.created_at
        created += len(drafts)
        if progress is not None:
            progress(len(drafts))
    _date_new_organisations(first_signup)
    return created


def _active_topic_ids() -> dict[str, int]:
    """Active topics by slug, in their display order; seeds the topics if there are none."""
    if not db.session.scalar(sa.select(sa.func.count()).select_from(Topic)):
        seed_topics()
        db.session.flush()
    topic_ids: dict[str, int] = dict(
        db.session.execute(
            sa.select(Topic.slug, Topic.id).where(Topic.active).order_by(Topic.position, Topic.id)
        ).all()
    )
    if not topic_ids:
        raise NoTopics()
    return topic_ids


def _date_new_organisations(first_signup: dict[int, datetime]) -> None:
    if first_signup:
        db.session.execute(
            sa.update(_organisations)
            .where(_organisations.c.id == sa.bindparam("organisation_id"))
            .values(created_at=sa.bindparam("at"), updated_at=sa.bindparam("at")),
            [{"organisation_id": key, "at": at} for key, at in first_signup.items()],
        )


def _insert_organisations(
    drafts: list[ContactDraft], organisation_ids: dict[tuple[str, str | None], int]
) -> list[int]:
    """Insert the drafts' organisations not in `organisation_ids` yet; returns their ids."""
    new: dict[tuple[str, str | None], OrganisationDraft] = {}
    for draft in drafts:
        organisation = draft.organisation
        if organisation.key not in organisation_ids:
            new.setdefault(organisation.key, organisation)
    if not new:
        return []
    rows = [
        {
            "name": organisation.name,
            "normalised_name": organisation.key[0],
            "stakeholder_type": organisation.stakeholder_type,
            "country": organisation.country,
            "website": organisation.website,
        }
        for organisation in new.values()
    ]
    # Matched back on the unique key rather than by row order: RETURNING in row order would
    # make SQLite insert one row per statement.
    inserted = db.session.execute(
        sa.insert(_organisations).returning(
            _organisations.c.id, _organisations.c.normalised_name, _organisations.c.country
        ),
        rows,
    ).all()
    for organisation_id, normalised_name, country in inserted:
        organisation_ids[(normalised_name, country)] = organisation_id
    return [organisation_id for organisation_id, _, _ in inserted]


def _insert_contacts(
    drafts: list[ContactDraft], organisation_ids: dict[tuple[str, str | None], int]
) -> list[int]:
    rows = [
        {
            "salutation": draft.salutation,
            "given_name": draft.given_name,
            "family_name": draft.family_name,
            "job_title": draft.job_title,
            "email": draft.email,
            "email_key": draft.email.casefold(),
            "phone": draft.phone,
            "country": draft.country,
            "language": draft.language,
            "organisation_id": organisation_ids[draft.organisation.key],
            "status": draft.status,
            "link_secret": secrets.token_urlsafe(32),
            "created_at": draft.created_at,
            "confirmed_at": draft.confirmed_at,
            "updated_at": draft.updated_at,
            "search_name": _search_name(draft.given_name, draft.family_name),
            "version": 1,
        }
        for draft in drafts
    ]
    ids = dict(
        db.session.execute(
            sa.insert(_contacts).returning(_contacts.c.email_key, _contacts.c.id), rows
        ).all()
    )
    return [ids[row["email_key"]] for row in rows]


def _insert_subscriptions_and_consent(
    drafts: list[ContactDraft], contact_ids: list[int], topic_ids: dict[str, int]
) -> None:
    subscription_rows = []
    consent_rows = []
    for draft, contact_id in zip(drafts, contact_ids, strict=True):
        subscribed_at = draft.confirmed_at or draft.created_at
        for slug in draft.topics:
            subscription_rows.append(
                {
                    "contact_id": contact_id,
                    "topic_id": topic_ids[slug],
                    "subscribed_at": subscribed_at,
                }
            )
        summary = f"topics: {', '.join(draft.topics)}; language: {draft.language}"
        consent_rows.append(_consent(contact_id, draft.created_at, ConsentAction.SIGNUP, summary))
        if draft.confirmed_at is not None:
            consent_rows.append(
                _consent(contact_id, draft.confirmed_at, ConsentAction.CONFIRM, summary)
            )
        if draft.status is ContactStatus.UNSUBSCRIBED and draft.unsubscribed_at is not None:
            consent_rows.append(
                _consent(contact_id, draft.unsubscribed_at, ConsentAction.UNSUBSCRIBE, None)
            )
    db.session.execute(sa.insert(subscriptions), subscription_rows)
    db.session.execute(sa.insert(_consent_events), consent_rows)


def _consent(
    contact_id: int, at: datetime, action: ConsentAction, detail: str | None
) -> dict[str, object]:
    return {
        "contact_id": contact_id,
        "at": at,
        "action": action,
        "wording_version": PRIVACY_NOTICE_VERSION,
        "source": SOURCE,
        "detail": detail,
    }


@lru_cache(maxsize=65536)
def _search_name(given_name: str, family_name: str) -> str:
    # Names come from short lists, so the same pairs recur thousands of times.
    return search_key(f"{given_name} {family_name}")
