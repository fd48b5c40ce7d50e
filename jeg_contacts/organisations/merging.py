"""Merging duplicate organisations: the candidates, the country check, and the merge itself,
audited in its transaction."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jeg_contacts.audit.presentation import in_words
from jeg_contacts.audit.services import changes_between, record
from jeg_contacts.contacts.models import Contact, Organisation
from jeg_contacts.countries import country_name
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.organisations.services import (
    find_same_organisation,
    label,
    name_matches,
    snapshot,
)

MERGE_CANDIDATE_LIMIT = 20


class CountriesNotConfirmed(ValidationFailed):
    """A merge would move contacts from one country into an organisation in another, and the
    person merging has not confirmed these two countries."""

    def __init__(self, kept: Organisation, other: Organisation) -> None:
        moving_from, moving_into = _country(other), _country(kept)
        super().__init__(
            "confirm_countries",
            f"{label(other)} is in {moving_from} and {label(kept)} in {moving_into}. Merging "
            f"them moves contacts from {moving_from} into an organisation in {moving_into}. "
            "Nothing was merged: confirm that this is what you want, or choose a duplicate "
            f"in {moving_into}.",
        )


def _country(organisation: Organisation) -> str:
    return country_name(organisation.country, "en") if organisation.country else "no country"


def crosses_countries(kept: Organisation, other: Organisation) -> bool:
    """Whether merging `other` into `kept` moves contacts from one country into another: both
    have a country, and not the same one. (One without a country may be either.)"""
    return bool(kept.country and other.country and kept.country != other.country)


@dataclass
class MergeCandidates:
    """Organisations that may be duplicates of one: in its country (or either has none), and
    those in other countries, which are not duplicates unless the person merging says so."""

    same_country: list[Organisation]
    other_countries: list[Organisation]


def merge_candidates(organisation: Organisation, q: str) -> MergeCandidates:
    """Organisations the user may mean by `q` (words of the name, or an id), other than this
    one, at most MERGE_CANDIDATE_LIMIT of each kind."""
    conditions = name_matches(q)
    if not conditions:
        return MergeCandidates([], [])
    matches: sa.ColumnElement[bool] = sa.and_(*conditions)
    if q.strip().lstrip("#").isdigit():
        matches = sa.or_(matches, Organisation.id == int(q.strip().lstrip("#")))
    elsewhere: sa.ColumnElement[bool] = sa.false()
    if organisation.country:
        elsewhere = sa.and_(
            Organisation.country.is_not(None), Organisation.country != organisation.country
        )

    def found(where: sa.ColumnElement[bool]) -> list[Organisation]:
        return list(
            db.session.scalars(
                sa.select(Organisation)
                .where(matches, Organisation.id != organisation.id, where)
                .order_by(Organisation.normalised_name, Organisation.id)
                .limit(MERGE_CANDIDATE_LIMIT)
            )
        )

    return MergeCandidates(found(sa.not_(elsewhere)), found(elsewhere))


def check_mergeable(
    kept: Organisation,
    other: Organisation,
    countries_confirmed: tuple[str, str] | None = None,
) -> None:
    """ValidationFailed unless `other` may be merged into `kept`. Across countries that takes
    `countries_confirmed`: the codes (from, into) the person merging confirmed, which must be
    the organisations' countries as they are now."""
    if kept.id == other.id:
        raise ValidationFailed("other", "An organisation cannot be merged with itself.")
    if crosses_countries(kept, other) and countries_confirmed != (other.country, kept.country):
        raise CountriesNotConfirmed(kept, other)


def merge_organisations(
    kept: Organisation,
    other: Organisation,
    *,
    countries_confirmed: tuple[str, str] | None = None,
) -> list[int]:
    """Move every contact of `other` to `kept`, fill `kept`'s empty fields from `other`, delete
    `other` and audit it all; returns the ids of the contacts moved. Does not commit.

    Organisations in two different countries are merged only with `countries_confirmed`
    (see check_mergeable): otherwise CountriesNotConfirmed, and nothing changes."""
    check_mergeable(kept, other, countries_confirmed)
    across = (
        f"from {_country(other)} ({other.country}) into {_country(kept)} ({kept.country})"
        if crosses_countries(kept, other)
        else None
    )
    kept_before = snapshot(kept)
    other_before = snapshot(other)
    other_label, kept_label, other_id = label(other), label(kept), other.id
    moved_ids = _move_contacts(other, kept)
    _fill_empty_fields(kept, other_before)
    changes: dict[str, Any] = changes_between(kept_before, snapshot(kept))
    changes["merged_organisation"] = f"#{other_id}: {in_words(other_before)}"
    changes["moved_contact_ids"] = ", ".join(str(contact_id) for contact_id in moved_ids) or "none"
    if across:
        changes["countries_confirmed"] = across
    labels = (other_label, kept_label)
    _record_merge(kept, other_id, labels, other_before, changes, moved_ids)
    db.session.flush()
    return moved_ids


def _move_contacts(other: Organisation, kept: Organisation) -> list[int]:
    """Move `other`'s contacts to `kept` and delete `other`; the ids of the contacts moved."""
    # One UPDATE; bumping `version` makes open contact edit forms notice the change.
    moved_ids = sorted(
        db.session.scalars(
            sa.update(Contact)
            .where(Contact.organisation_id == other.id)
            .values(organisation_id=kept.id, version=Contact.version + 1, updated_at=utcnow())
            .returning(Contact.id),
            execution_options={"synchronize_session": "fetch"},
        )
    )
    # Expired first so the ORM does not try to detach the (already moved) contacts itself,
    # and so `kept.contacts` is read afresh.
    db.session.expire(other)
    db.session.expire(kept, ["contacts"])
    db.session.delete(other)
    db.session.flush()
    return moved_ids


def _fill_empty_fields(kept: Organisation, other_before: dict[str, Any]) -> None:
    """`kept` takes the merged organisation's website and country where it has none (the
    country only if no other organisation of that name already has it)."""
    if not kept.website and other_before["website"]:
        kept.website = other_before["website"]
    if (
        kept.country is None
        and other_before["country"]
        and find_same_organisation(kept.normalised_name, other_before["country"]) is None
    ):
        kept.country = other_before["country"]


def _record_merge(
    kept: Organisation,
    other_id: int,
    labels: tuple[str, str],
    other_before: dict[str, Any],
    changes: dict[str, Any],
    moved_ids: list[int],
) -> None:
    """Audit the merge on both organisations and on every contact moved; `labels` are the
    merged and kept organisations' labels as they were before the merge."""
    other_label, kept_label = labels
    record(
        "organisation.merged",
        "organisation",
        kept.id,
        f"Merged {other_label} into {kept_label}; {len(moved_ids)} contact(s) moved",
        changes,
    )
    record(
        "organisation.merged_away",
        "organisation",
        other_id,
        f"Merged into {kept_label} and deleted; {len(moved_ids)} contact(s) moved",
        {field: [value, None] for field, value in other_before.items() if value is not None},
    )
    for contact_id in moved_ids:
        record(
            "contact.organisation_changed",
            "contact",
            contact_id,
            f"Organisation {other_label} merged into {kept_label}",
            {
                "organisation": [other_before["name"], kept.name],
                "organisation_id": [other_id, kept.id],
            },
        )
