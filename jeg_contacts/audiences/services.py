"""Audiences: which contacts a filter describes, in which order, and who of them mail reaches.

The directory lists them, announcements are sent to them and exports write them out: all
three select contacts through `ContactFilter` and `filter_contacts`, so they always agree.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Self

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from jeg_contacts.contacts.models import (
    Contact,
    ContactStatus,
    Organisation,
    StakeholderType,
    Topic,
    search_key,
    subscriptions,
)
from jeg_contacts.countries import country_name, iso_codes
from jeg_contacts.extensions import MAX_ID, db
from jeg_contacts.i18n import LANGUAGE_NAMES_IN_ENGLISH, LANGUAGES

MAX_QUERY_LENGTH = 200


# --- The filter ---------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


def parse_ids(values: Iterable[str]) -> list[int]:
    """The record ids among `values`, once each; anything else is dropped."""
    ids = (int(value) for value in values if value.isascii() and value.isdigit())
    return list(dict.fromkeys(value for value in ids if value <= MAX_ID))


@dataclass(frozen=True)
class ContactFilter:
    """Which contacts to show or address; empty fields do not narrow anything.

    Erased contacts are left out unless `statuses` asks for them."""

    q: str = ""
    topic_ids: tuple[int, ...] = ()  # subscribed to any of these
    stakeholder_types: tuple[StakeholderType, ...] = ()
    countries: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    statuses: tuple[ContactStatus, ...] = ()
    created_from: date | None = None
    created_to: date | None = None

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> Self:
        """The filter described by query arguments; values that mean nothing are ignored, so
        an edited or outdated bookmark still opens."""
        types = {member.value: member for member in StakeholderType}
        statuses = {member.value: member for member in ContactStatus}
        return cls(
            q=" ".join(args.get("q", "").split())[:MAX_QUERY_LENGTH],
            topic_ids=tuple(parse_ids(args.getlist("topic"))),
            stakeholder_types=_unique(types[v] for v in args.getlist("type") if v in types),
            countries=_unique(v for v in args.getlist("country") if v in iso_codes()),
            languages=_unique(v for v in args.getlist("language") if v in LANGUAGES),
            statuses=_unique(statuses[v] for v in args.getlist("status") if v in statuses),
            created_from=_day(args.get("since")),
            created_to=_day(args.get("until")),
        )

    def to_args(self) -> dict[str, list[str]]:
        """Query arguments that `from_args` reads back into an equal filter."""
        args = {
            "q": [self.q] if self.q else [],
            "topic": [str(topic_id) for topic_id in self.topic_ids],
            "type": [member.value for member in self.stakeholder_types],
            "country": list(self.countries),
            "language": list(self.languages),
            "status": [member.value for member in self.statuses],
            "since": [self.created_from.isoformat()] if self.created_from else [],
            "until": [self.created_to.isoformat()] if self.created_to else [],
        }
        return {name: values for name, values in args.items() if values}

    @property
    def is_empty(self) -> bool:
        return self == ContactFilter()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def filter_contacts(query: sa.Select, contact_filter: ContactFilter) -> sa.Select:
    """`query` (a select over Contact) narrowed to the contacts `contact_filter` describes.

    Conditions on organisations and topics are IN-subqueries rather than joins: organisations
    are only read when the filter needs them, the result stays one row per contact, and the
    caller may still join organisations itself (to sort by them)."""
    f = contact_filter
    # Every word must appear in the name, the address or the organisation's name.
    for word in search_key(f.q).split():
        organisations = sa.select(Organisation.id).where(
            Organisation.normalised_name.contains(word, autoescape=True)
        )
        query = query.where(
            sa.or_(
                Contact.search_name.contains(word, autoescape=True),
                Contact.email_key.contains(word, autoescape=True),
                Contact.organisation_id.in_(organisations),
            )
        )
    if f.topic_ids:
        query = query.where(
            sa.exists()
            .where(subscriptions.c.contact_id == Contact.id)
            .where(subscriptions.c.topic_id.in_(f.topic_ids))
        )
    if f.stakeholder_types:
        query = query.where(
            Contact.organisation_id.in_(
                sa.select(Organisation.id).where(
                    Organisation.stakeholder_type.in_(f.stakeholder_types)
                )
            )
        )
    if f.countries:
        query = query.where(Contact.country.in_(f.countries))
    if f.languages:
        query = query.where(Contact.language.in_(f.languages))
    if f.statuses:
        query = query.where(Contact.status.in_(f.statuses))
    else:
        query = query.where(Contact.status != ContactStatus.ERASED)
    if f.created_from:
        query = query.where(Contact.created_at >= _start_of(f.created_from))
    if f.created_to:
        query = query.where(Contact.created_at < _start_of(f.created_to + timedelta(days=1)))
    return query


def describe_filter(contact_filter: ContactFilter) -> str:
    """The filter in words, for confirmation pages and the audit log."""
    f = contact_filter
    parts = []
    if f.q:
        parts.append(f"search “{f.q}”")
    if f.topic_ids:
        labels = db.session.scalars(
            sa.select(Topic.label_en).where(Topic.id.in_(f.topic_ids)).order_by(Topic.label_en)
        )
        parts.append("topic " + " or ".join(f"“{label}”" for label in labels))
    if f.stakeholder_types:
        parts.append("type " + " or ".join(member.label for member in f.stakeholder_types))
    if f.countries:
        parts.append("country " + " or ".join(country_name(code, "en") for code in f.countries))
    if f.languages:
        parts.append(
            "language " + " or ".join(LANGUAGE_NAMES_IN_ENGLISH[code] for code in f.languages)
        )
    if f.statuses:
        parts.append("status " + " or ".join(member.value for member in f.statuses))
    if f.created_from:
        parts.append(f"signed up from {f.created_from.isoformat()}")
    if f.created_to:
        parts.append(f"signed up until {f.created_to.isoformat()}")
    return "; ".join(parts) if parts else "all contacts except erased ones"


def all_topics() -> list[Topic]:
    """Every topic, archived ones included (they can still be filtered on and removed)."""
    return list(db.session.scalars(sa.select(Topic).order_by(Topic.position, Topic.id)))


# --- Order --------------------------------------------------------------------------------


# Sort keys of the directory and exports; ties are broken by name, then id, so pages never
# overlap.
SORT_KEYS = ("name", "email", "organisation", "country", "status", "signed_up")
DEFAULT_SORT = "name"


def normalise_sort(raw: str | None) -> str:
    """`raw` if it names a sort order ("name", "-signed_up", ...), else the default."""
    return raw if raw and raw.removeprefix("-") in SORT_KEYS else DEFAULT_SORT


def sort_contacts(query: sa.Select, sort: str, *, walk_organisations: bool = False) -> sa.Select:
    """`query` ordered by a directory sort key; a leading "-" sorts descending.

    With `walk_organisations`, sorting by organisation uses an inner join when that gives the
    same rows (every matching contact has an organisation): the database can then read
    organisations in name order and stop once a page is full, instead of sorting every match.
    Worth it for broad selections; a text search is better served by sorting its few matches.
    """
    sort = normalise_sort(sort)
    if sort.removeprefix("-") == "organisation":
        inner = walk_organisations and not db.session.scalar(
            sa.select(query.where(Contact.organisation_id.is_(None)).exists())
        )
        query = query.join(
            Organisation, Contact.organisation_id == Organisation.id, isouter=not inner
        )
    return order_contacts(query, sort)


def order_contacts(query: sa.Select, sort: str) -> sa.Select:
    """`query`, which joins organisations when sorting by them, in the order of `sort`."""
    key = sort.removeprefix("-")
    columns: list[Any] = {
        # Same-named organisations (a ministry in each country) apart, by country then id:
        # each one's contacts can then come from an index already in order, with no sort.
        "organisation": [
            Organisation.normalised_name,
            Organisation.country,
            Organisation.id,
            Contact.search_name,
        ],
        "name": [Contact.search_name],
        "email": [Contact.email_key],
        "country": [Contact.country, Contact.search_name],
        "status": [Contact.status, Contact.search_name],
        "signed_up": [Contact.created_at],
    }[key]
    columns.append(Contact.id)
    if sort.startswith("-"):
        return query.order_by(*(column.desc() for column in columns))
    return query.order_by(*columns)


# --- Who mail reaches ---------------------------------------------------------------------


def audience_filter(criteria: dict[str, Any]) -> ContactFilter:
    """The directory filter stored as an audience's criteria (ContactFilter.to_args())."""
    return ContactFilter.from_args(MultiDict(criteria or {}))


def audience_query(criteria: dict[str, Any]) -> sa.Select:
    """The active contacts an audience reaches, as a select of Contact ids. Whatever the
    criteria say about status, only active contacts ever receive announcements."""
    query = filter_contacts(sa.select(Contact.id), audience_filter(criteria))
    return query.where(Contact.status == ContactStatus.ACTIVE)


def audience_size(criteria: dict[str, Any]) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(audience_query(criteria).subquery())
    )


def audience_topic_ids(criteria: dict[str, Any]) -> set[int]:
    """Topics the audience selects on; empty when it does not filter by topic."""
    return set(audience_filter(criteria).topic_ids)


def describe_audience(criteria: dict[str, Any]) -> str:
    """Who an audience reaches, in words, e.g. "active contacts with country Kazakhstan"."""
    contact_filter = audience_filter(criteria)
    if contact_filter.is_empty:
        return "every active contact"
    return "active contacts with " + describe_filter(contact_filter)


def audience_languages(criteria: dict[str, Any]) -> dict[str, int]:
    """How many of the audience's active contacts read each language."""
    ids = audience_query(criteria).subquery()
    rows = db.session.execute(
        sa.select(Contact.language, sa.func.count())
        .where(Contact.id.in_(sa.select(ids.c.id)))
        .group_by(Contact.language)
    ).all()
    counts = dict.fromkeys(LANGUAGES, 0)
    for language, count in rows:
        counts[language if language in counts else "en"] += count
    return counts
