"""Finding and editing organisations; every change is audited in its transaction (merging is
in merging.py)."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_sqlalchemy.pagination import Pagination

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.audit.services import changes_between, record
from jeg_contacts.contacts.models import Contact, Organisation, StakeholderType, search_key
from jeg_contacts.contacts.services import (
    check_country,
    clean_line,
    normalise_organisation_name,
)
from jeg_contacts.countries import country_choices
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db

SORT_KEYS = ("name", "type", "country", "contacts")


class DuplicateOrganisation(ValidationFailed):
    """Another organisation already has this name in this country: merge rather than rename."""

    def __init__(self, existing: Organisation) -> None:
        super().__init__(
            "name",
            f"{existing.name} (#{existing.id}) already has this name in this country. "
            "If they are the same organisation, merge them instead.",
        )
        self.existing = existing


class ChangedMeanwhile(ValidationFailed):
    """The record was saved by someone else after the edit form was opened."""

    def __init__(self) -> None:
        super().__init__(
            "",
            "Someone else changed this organisation while you were editing it. "
            "Their version is shown below; check it, then save again to keep your changes.",
        )


@dataclass(frozen=True)
class OrganisationFilters:
    """What the organisation list is narrowed and ordered by (all from the query string)."""

    q: str = ""
    stakeholder_type: StakeholderType | None = None
    country: str | None = None
    sort: str = "name"

    @classmethod
    def from_args(cls, args: Any) -> "OrganisationFilters":
        """Filters from request arguments; unknown values are ignored rather than refused."""
        raw_type = args.get("type", "")
        stakeholder_type = (
            StakeholderType(raw_type) if raw_type in StakeholderType._value2member_map_ else None
        )
        country = args.get("country", "").strip().upper() or None
        sort = args.get("sort", "name")
        if sort.removeprefix("-") not in SORT_KEYS:
            sort = "name"
        return cls(
            q=args.get("q", "").strip()[:200],
            stakeholder_type=stakeholder_type,
            country=country if country and len(country) == 2 else None,
            sort=sort,
        )


@dataclass(frozen=True)
class OrganisationData:
    """What staff may change on an organisation, as typed into the edit form."""

    name: str | None
    stakeholder_type: str | None
    country: str | None
    website: str | None


def _contact_counts() -> sa.Subquery:
    return (
        sa.select(Contact.organisation_id, sa.func.count().label("contact_count"))
        .where(Contact.organisation_id.is_not(None))
        .group_by(Contact.organisation_id)
        .subquery("contact_counts")
    )


def name_matches(text: str) -> list[sa.ColumnElement[bool]]:
    """Every word of `text` somewhere in the normalised name ("geneve univ" finds
    "Université de Genève")."""
    return [
        Organisation.normalised_name.contains(word, autoescape=True)
        for word in search_key(text).split()
    ]


def _country_name_order(codes: Iterable[str]) -> sa.ColumnElement[Any]:
    # Sort by the English name people read, not by the ISO code; only the codes in use are
    # listed, which keeps the CASE short.
    names = dict(country_choices("en"))
    by_name = sorted(codes, key=lambda code: names.get(code, code).casefold())
    return sa.case(
        {code: rank for rank, code in enumerate(by_name)},
        value=Organisation.country,
        else_=len(by_name),
    )


def _conditions(filters: OrganisationFilters) -> list[sa.ColumnElement[bool]]:
    conditions = name_matches(filters.q) if filters.q else []
    if filters.stakeholder_type is not None:
        conditions.append(Organisation.stakeholder_type == filters.stakeholder_type)
    if filters.country:
        conditions.append(Organisation.country == filters.country)
    return conditions


def organisation_query(
    filters: OrganisationFilters, countries: Iterable[str] = ()
) -> sa.Select[tuple[Organisation]]:
    """The filtered, sorted list of organisations; `countries` are the codes in use, needed
    to sort by country name."""
    query = sa.select(Organisation).where(*_conditions(filters))
    key = filters.sort.removeprefix("-")
    if key == "contacts":
        counts = _contact_counts()
        query = query.outerjoin(counts, counts.c.organisation_id == Organisation.id)
        column: sa.ColumnElement[Any] = sa.func.coalesce(counts.c.contact_count, 0)
    elif key == "type":
        column = Organisation.stakeholder_type
    elif key == "country":
        column = _country_name_order(countries)
    else:
        column = Organisation.normalised_name
    descending = filters.sort.startswith("-")
    order = [column.desc() if descending else column.asc()]
    # Ties broken by the unique (normalised_name, country) index, then id: ordered all one way,
    # a name sort walks that index instead of sorting every row to reach a deep page.
    tie_breakers = (Organisation.normalised_name, Organisation.country, Organisation.id)
    if key == "name":
        order = [key.desc() if descending else key.asc() for key in tie_breakers]
    else:
        order.extend(tie_breakers)
    return query.order_by(*order)


@dataclass
class OrganisationPage:
    """One page of the organisation list with what the page shows beside it."""

    page: Pagination
    counts: dict[int, int]
    countries: list[str]


def organisation_page(filters: OrganisationFilters, page: int, per_page: int) -> OrganisationPage:
    """A page of organisations, their contact counts and the countries to filter on."""
    countries = countries_in_use()
    pagination = db.paginate(
        organisation_query(filters, countries),
        page=page,
        per_page=per_page,
        error_out=False,
        count=False,
    )
    # Counted without the sort's join to contacts, which would double the cost of a page.
    pagination.total = db.session.scalar(
        sa.select(sa.func.count()).select_from(Organisation).where(*_conditions(filters))
    )
    return OrganisationPage(
        page=pagination,
        counts=contact_counts_for(organisation.id for organisation in pagination.items),
        countries=countries,
    )


def contact_counts_for(organisation_ids: Iterable[int]) -> dict[int, int]:
    """{organisation id: number of contacts} for these organisations, in one grouped query."""
    ids = list(organisation_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Contact.organisation_id, sa.func.count())
        .where(Contact.organisation_id.in_(ids))
        .group_by(Contact.organisation_id)
    )
    counts = dict.fromkeys(ids, 0)
    counts.update({organisation_id: count for organisation_id, count in rows})
    return counts


def countries_in_use() -> list[str]:
    """Country codes that at least one organisation has, for the list's filter."""
    return list(
        db.session.scalars(
            sa.select(Organisation.country)
            .where(Organisation.country.is_not(None))
            .distinct()
            .order_by(Organisation.country)
        )
    )


def contacts_query(organisation: Organisation) -> sa.Select[tuple[Contact]]:
    """The organisation's contacts, by name."""
    return (
        sa.select(Contact)
        .where(Contact.organisation_id == organisation.id)
        .order_by(Contact.search_name, Contact.id)
    )


def audit_history(organisation: Organisation, limit: int = 100) -> list[AuditEntry]:
    """The newest audit entries about this organisation."""
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(
                AuditEntry.entity_type == "organisation", AuditEntry.entity_id == organisation.id
            )
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )


def edit_token(organisation: Organisation) -> str:
    """Identifies the saved version an edit form was opened on."""
    return organisation.updated_at.isoformat()


def snapshot(organisation: Organisation) -> dict[str, Any]:
    """The fields staff can change, as plain values for the audit log."""
    return {
        "name": organisation.name,
        "stakeholder_type": organisation.stakeholder_type.value,
        "country": organisation.country,
        "website": organisation.website,
    }


def label(organisation: Organisation) -> str:
    return f"{organisation.name} (#{organisation.id})"


def clean_website(field: str, value: str | None) -> str | None:
    """An http(s) address on one line, or None when left empty."""
    website = clean_line(field, value, max_length=300)
    if not website:
        return None
    parts = urlsplit(website)
    if (
        parts.scheme not in ("http", "https")
        or not website.lower().startswith(("http://", "https://"))
        or not parts.netloc
        or any(ch.isspace() for ch in website)
    ):
        raise ValidationFailed(
            field,
            "Enter a web address starting with https:// or http://, like https://example.org.",
        )
    return website


def find_same_organisation(
    normalised_name: str, country: str | None, *, other_than: int | None = None
) -> Organisation | None:
    """The organisation sign-up would treat as the same one (same normalised name and country)."""
    query = sa.select(Organisation).where(
        Organisation.normalised_name == normalised_name,
        Organisation.country.is_(None) if country is None else Organisation.country == country,
    )
    if other_than is not None:
        query = query.where(Organisation.id != other_than)
    return db.session.scalar(query.limit(1))


def update_organisation(
    organisation: Organisation, data: OrganisationData, *, loaded_token: str | None = None
) -> dict[str, list]:
    """Apply staff's edit and audit it; returns {field: [before, after]} (empty: nothing changed).

    `loaded_token` is `edit_token()` as it was when the form was opened; a different current
    value means someone saved in between, and the edit is refused rather than overwriting."""
    if loaded_token and loaded_token != edit_token(organisation):
        raise ChangedMeanwhile()
    name = clean_line("name", data.name, max_length=200, required=True)
    if data.stakeholder_type not in StakeholderType._value2member_map_:
        raise ValidationFailed("stakeholder_type", "Choose a type from the list.")
    stakeholder_type = StakeholderType(data.stakeholder_type)
    country = check_country("country", data.country or None)
    website = clean_website("website", data.website)
    normalised_name = normalise_organisation_name(name)
    duplicate = find_same_organisation(normalised_name, country, other_than=organisation.id)
    if duplicate is not None:
        raise DuplicateOrganisation(duplicate)

    before = snapshot(organisation)
    organisation.name = name
    organisation.normalised_name = normalised_name
    organisation.stakeholder_type = stakeholder_type
    organisation.country = country
    organisation.website = website
    changes = changes_between(before, snapshot(organisation))
    if changes:
        record(
            "organisation.updated",
            "organisation",
            organisation.id,
            f"Edited organisation {label(organisation)}",
            changes,
        )
        db.session.flush()
    return changes


def count_contacts(organisation: Organisation) -> int:
    return contact_counts_for([organisation.id])[organisation.id]
