"""The audit log in words: field names and recorded values as staff read them ("Country of
the organisation: Germany → France", "(none)"), never codes or Python's `None`. Entries keep
the raw values (codes and slugs), so the words follow today's names for old entries too."""

from typing import Any

import sqlalchemy as sa
from flask import g

from jeg_contacts.contacts.models import StakeholderType, Topic
from jeg_contacts.contacts.services import DETAIL_FIELDS
from jeg_contacts.countries import country_name
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGE_NAMES_IN_ENGLISH

NONE = "(none)"

FIELD_LABELS = {
    "given_name": "Given name",
    "family_name": "Family name",
    "email": "Email",
    "stakeholder_type": "Type of organisation",
    "organisation_country": "Country of the organisation",
    "organisation_id": "Organisation record",
    "label_en": "English name",
    "label_fr": "French name",
    "label_ru": "Russian name",
    "slug": "Identifier",
    **{detail.name: detail.label for detail in DETAIL_FIELDS},
}


def field_label(field: str) -> str:
    """How staff read a recorded field's name: "organisation_country" -> "Country of the
    organisation"; a field with no entry here loses its underscores."""
    return FIELD_LABELS.get(field) or field.replace("_", " ").capitalize()


def _topic_labels() -> dict[str, str]:
    """Every topic's English label by slug, read once per request (a page of entries)."""
    if "audit_topic_labels" not in g:
        rows = db.session.execute(sa.select(Topic.slug, Topic.label_en))
        g.audit_topic_labels = {slug: label for slug, label in rows}
    return g.audit_topic_labels


def value_text(field: str, value: Any) -> str:
    """A recorded value in words: country codes as names, types and languages by name,
    topics by label, nothing as "(none)"."""
    if value is None or value == "" or value == []:
        return NONE
    if isinstance(value, list):
        return ", ".join(value_text(field, each) for each in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, str):
        return str(value)
    if field.endswith("country") or field == "countries":
        return country_name(value, "en")
    if field == "stakeholder_type" and value in StakeholderType._value2member_map_:
        return StakeholderType(value).label
    if field == "language":
        return LANGUAGE_NAMES_IN_ENGLISH.get(value, value)
    if field == "topics":
        return _topic_labels().get(value, value)
    return value


def in_words(values: dict[str, Any]) -> str:
    """Several recorded fields on one line: "name UBA; country Germany; website (none)"."""
    return "; ".join(
        f"{field_label(field).lower()} {value_text(field, value)}"
        for field, value in values.items()
    )
