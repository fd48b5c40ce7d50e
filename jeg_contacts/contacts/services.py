"""Rules shared by every way a contact is created or changed (sign-up, back office, import)."""

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    ErasedAddress,
    Organisation,
    StakeholderType,
    Topic,
    search_key,
)
from jeg_contacts.countries import iso_codes
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.text import CONTROL_CHARS, email_key

# Bumped whenever the privacy notice changes; every consent event records the version agreed to.
PRIVACY_NOTICE_VERSION = "2026-11"

SALUTATIONS = ("ms", "mr", "mx", "dr", "prof")


def email_hash(email: str) -> str:
    """One-way hash kept after erasure to recognise the address without storing it."""
    return hashlib.sha256(email_key(email).encode()).hexdigest()


def is_erased_address(email: str) -> bool:
    return db.session.get(ErasedAddress, email_hash(email)) is not None


def normalise_organisation_name(name: str) -> str:
    """The key organisations are deduplicated on."""
    return search_key(name)


def clean_line(field: str, value: str | None, *, max_length: int, required: bool = False) -> str:
    """A single-line text field, stripped; rejects line breaks, control characters and excess."""
    text = (value or "").strip()
    if CONTROL_CHARS.search(text):
        raise ValidationFailed(field, _("This field must be a single line of text."))
    if required and not text:
        raise ValidationFailed(field, _("This field is required."))
    if len(text) > max_length:
        raise ValidationFailed(field, _("Use at most %(count)d characters.", count=max_length))
    return text


# Staff's statement of why someone agreed to be contacted, when staff make them active without
# their own confirmation (an import, the back office's add form); kept in the consent log.
BASIS_MAX_CHARS = 500


def consent_basis(raw: str | None, *, needed: str, field: str = "basis") -> str:
    """Staff's statement of why someone agreed to be contacted, on one line (line breaks become
    spaces); ValidationFailed(field, needed) when it says nothing, and the single-line rule's
    errors when it is not one line of at most BASIS_MAX_CHARS characters."""
    basis = " ".join((raw or "").split())
    # Spaces, marks or invisible characters alone state nothing.
    if not any(character.isalnum() for character in basis):
        raise ValidationFailed(field, needed)
    return clean_line(field, basis, max_length=BASIS_MAX_CHARS)


def clean_person_name(field: str, value: str | None, *, required: bool = True) -> str:
    text = clean_line(field, value, max_length=100, required=required)
    if "<" in text or ">" in text:
        raise ValidationFailed(field, _("Names cannot contain the characters < or >."))
    return text


def check_country(field: str, code: str | None, *, required: bool = False) -> str | None:
    if not code:
        if required:
            raise ValidationFailed(field, _("Choose a country."))
        return None
    if code not in iso_codes():
        raise ValidationFailed(field, _("Choose a country from the list."))
    return code


def find_or_create_organisation(
    name: str, stakeholder_type: StakeholderType, country: str | None, website: str | None = None
) -> Organisation:
    """The organisation with this normalised name in this country, created if new."""
    key = normalise_organisation_name(name)
    organisation = db.session.scalar(
        sa.select(Organisation).where(
            Organisation.normalised_name == key,
            Organisation.country.is_(None) if country is None else Organisation.country == country,
        )
    )
    if organisation is None:
        organisation = Organisation(
            name=name,
            normalised_name=key,
            stakeholder_type=stakeholder_type,
            country=country,
            website=website or None,
        )
        db.session.add(organisation)
    elif website and not organisation.website:
        organisation.website = website
    return organisation


def active_topics() -> list[Topic]:
    """Topics offered for subscription, in display order."""
    return list(
        db.session.scalars(sa.select(Topic).where(Topic.active).order_by(Topic.position, Topic.id))
    )


def topics_by_ids(topic_ids: Iterable[int]) -> list[Topic]:
    """Active topics for these ids; unknown or archived ids are a validation error."""
    wanted = check_topics_chosen(topic_ids)
    found = list(
        db.session.scalars(
            sa.select(Topic).where(Topic.id.in_(wanted), Topic.active).order_by(Topic.position)
        )
    )
    if len(found) != len(wanted):
        raise ValidationFailed("topics", _("Choose topics from the list."))
    return found


@dataclass(frozen=True)
class ProfileData:
    """What a contact may state and change about themselves."""

    organisation_name: str
    stakeholder_type: str
    organisation_country: str | None
    given_name: str
    family_name: str
    language: str
    topic_ids: list[int] = field(default_factory=list)
    organisation_website: str | None = None
    salutation: str | None = None
    job_title: str | None = None
    department: str | None = None
    phone: str | None = None
    country: str | None = None


# What sign-up, the preference centre and the directory read from their forms (topics come
# apart, as a list of ids).
PROFILE_FORM_FIELDS = tuple(each.name for each in fields(ProfileData) if each.name != "topic_ids")


@dataclass(frozen=True)
class CleanProfile:
    """ProfileData once checked: stripped text, known codes, the topics it names."""

    organisation_name: str
    stakeholder_type: StakeholderType
    organisation_country: str | None
    website: str
    salutation: str | None
    given_name: str
    family_name: str
    job_title: str
    department: str
    phone: str
    country: str | None
    language: str
    topics: list[Topic]


# The rules of one profile field each: check_profile applies them all to a form, and an
# import (imports.rows.check_row) applies the same ones to every row, collecting every failure.


def check_organisation_name(value: str | None) -> str:
    """The organisation's name: one line, required, at most 200 characters, no < or >."""
    name = clean_line("organisation_name", value, max_length=200, required=True)
    if "<" in name or ">" in name:
        raise ValidationFailed(
            "organisation_name", _("Names cannot contain the characters < or >.")
        )
    return name


def check_stakeholder_type(value: str | None) -> StakeholderType:
    try:
        return StakeholderType(value)
    except ValueError:
        raise ValidationFailed("stakeholder_type", _("Choose a type from the list.")) from None


def check_website(value: str | None) -> str:
    website = clean_line("organisation_website", value, max_length=300)
    if website and not website.startswith(("https://", "http://")):
        raise ValidationFailed(
            "organisation_website", _("Enter a web address starting with https://")
        )
    return website


def check_salutation(value: str | None) -> str | None:
    salutation = value or None
    if salutation is not None and salutation not in SALUTATIONS:
        raise ValidationFailed("salutation", _("Choose a salutation from the list."))
    return salutation


def check_job_title(value: str | None) -> str:
    return clean_line("job_title", value, max_length=200)


def check_phone(value: str | None) -> str:
    phone = clean_line("phone", value, max_length=40)
    if phone and not all(ch.isdigit() or ch in " +-()." for ch in phone):
        raise ValidationFailed(
            "phone", _("Use digits, spaces and + - ( ) . only in the phone number.")
        )
    return phone


def check_department(value: str | None) -> str:
    return clean_line("department", value, max_length=200)


@dataclass(frozen=True)
class DetailField:
    """A line of text a contact may give about themselves, kept as it is on Contact.

    Its rule is the function `check_<name>` of this module, looked up when it runs, so a rule
    changed here is changed for every path at once."""

    name: str  # of Contact's column, ProfileData's field and the forms' field
    label: str  # as staff read it (English): import problems and mapping, export headers
    # Other names an import recognises for its column (the label is one), in the three
    # languages, as people write them.
    import_names: tuple[str, ...] = ()
    export_width: int = 20  # characters, for XLSX
    # Whether an export has its column unless staff choose otherwise; a new field's is not,
    # so the files people already take from us keep their columns where they were.
    export_default: bool = True

    def check(self, value: str | None) -> str:
        """`value` as its rule leaves it; ValidationFailed(name) when the rule refuses it."""
        return globals()[f"check_{self.name}"](value)


# The contact's details: every path that reads, checks, stores, audits, exports or erases a
# contact goes through this list, so a new one is a column, a rule and a line here (and the
# forms and templates that show it).
DETAIL_FIELDS = (
    DetailField(
        "job_title",
        "Job title",
        import_names=("position", "function", "job", "fonction", "poste", "titre", "должность"),
        export_width=28,
    ),
    DetailField(
        "department",
        "Department",
        import_names=(
            "Unit", "Division", "Département", "Service", "Unité", "Отдел", "Подразделение",
        ),
        export_width=24,
        export_default=False,
    ),
    DetailField(
        "phone",
        "Phone",
        import_names=(
            "telephone", "tel", "phone number", "telephone number", "mobile",
            "numero de telephone", "телефон", "номер телефона",
        ),
        export_width=18,
    ),
)  # fmt: skip


def check_language(value: str | None) -> str:
    if value not in LANGUAGES:
        raise ValidationFailed("language", _("Choose a language from the list."))
    return value


def check_topics_chosen(topic_ids: Iterable[int]) -> set[int]:
    """The chosen topic ids; ValidationFailed when there are none."""
    chosen = set(topic_ids)
    if not chosen:
        raise ValidationFailed("topics", _("Choose at least one topic."))
    return chosen


def check_profile(data: ProfileData) -> CleanProfile:
    """Validate `data` in full as apply_profile does, changing nothing; ValidationFailed if not.

    A sign-up for an address already on file is checked here and kept until its owner
    confirms, so nothing stored about them changes before."""
    organisation_name = check_organisation_name(data.organisation_name)
    stakeholder_type = check_stakeholder_type(data.stakeholder_type)
    organisation_country = check_country(
        "organisation_country", data.organisation_country, required=True
    )
    website = check_website(data.organisation_website)
    salutation = check_salutation(data.salutation)
    given_name = clean_person_name("given_name", data.given_name)
    family_name = clean_person_name("family_name", data.family_name)
    details = {detail.name: detail.check(getattr(data, detail.name)) for detail in DETAIL_FIELDS}
    country = check_country("country", data.country) or organisation_country
    language = check_language(data.language)
    return CleanProfile(
        organisation_name=organisation_name,
        stakeholder_type=stakeholder_type,
        organisation_country=organisation_country,
        website=website,
        salutation=salutation,
        given_name=given_name,
        family_name=family_name,
        **details,
        country=country,
        language=language,
        topics=topics_by_ids(data.topic_ids),
    )


def apply_profile(contact: Contact, data: ProfileData) -> None:
    """Validate `data` in full, then copy it onto `contact`; raises before changing anything.

    The one set of rules for sign-up, self-service preferences and the back office."""
    profile = check_profile(data)
    # Archived topics are no longer offered, so leaving them out is not a choice to drop them.
    archived = [topic for topic in contact.topics if not topic.active]

    contact.organisation = find_or_create_organisation(
        profile.organisation_name,
        profile.stakeholder_type,
        profile.organisation_country,
        profile.website or None,
    )
    contact.salutation = profile.salutation
    contact.given_name = profile.given_name
    contact.family_name = profile.family_name
    for detail in DETAIL_FIELDS:
        setattr(contact, detail.name, getattr(profile, detail.name) or None)
    contact.country = profile.country
    contact.language = profile.language
    contact.topics = [*profile.topics, *archived]


def new_link_secret() -> str:
    return secrets.token_urlsafe(32)


# Events staff record about someone rather than the person's own acts: they saw no privacy
# notice, so none is recorded with these.
STAFF_CONSENT_ACTIONS = frozenset({ConsentAction.IMPORTED, ConsentAction.ADDED_BY_STAFF})


def record_consent(
    contact: Contact, action: ConsentAction, source: str, detail: str | None = None
) -> ConsentEvent:
    """Add an event to the contact's consent log, under the current privacy notice when it is
    the person's own act."""
    event = ConsentEvent(contact=contact, **consent_values(action, source, detail))
    db.session.add(event)
    return event


def consent_values(action: ConsentAction, source: str, detail: str | None = None) -> dict[str, Any]:
    """A consent event's own values (an import inserts them in bulk, record_consent one at a
    time): the privacy notice's version only when it is the person's own act."""
    return {
        "action": action,
        "wording_version": None if action in STAFF_CONSENT_ACTIONS else PRIVACY_NOTICE_VERSION,
        "source": source,
        "detail": detail,
    }


def describe_subscription(contact: Contact) -> str:
    """A short, personal-data-free summary for the consent log."""
    return subscription_summary((topic.slug for topic in contact.topics), contact.language)


def subscription_summary(topic_slugs: Iterable[str], language: str) -> str:
    """describe_subscription for topics and a language not (yet) on a Contact."""
    return f"topics: {', '.join(topic_slugs)}; language: {language}"


# The fields of a contact an audit entry records as they are; status, organisation and topics
# are recorded by audit_snapshot as plain values.
AUDITED_FIELDS = (
    "salutation",
    "given_name",
    "family_name",
    "email",
    *(detail.name for detail in DETAIL_FIELDS),
    "country",
    "language",
)


def audit_snapshot(contact: Contact) -> dict[str, Any]:
    """The audited fields of a contact: plain values, topics as sorted slugs."""
    organisation = contact.organisation
    return snapshot_values(
        {name: getattr(contact, name) for name in AUDITED_FIELDS},
        status=contact.status,
        organisation=organisation.name if organisation else None,
        organisation_country=organisation.country if organisation else None,
        topic_slugs=(topic.slug for topic in contact.topics),
    )


def snapshot_values(
    values: Mapping[str, Any],
    *,
    status: ContactStatus | None,
    organisation: str | None,
    organisation_country: str | None,
    topic_slugs: Iterable[str],
) -> dict[str, Any]:
    """audit_snapshot from the values of the AUDITED_FIELDS (a Contact's, a database row's,
    an imported row's) and the rest given."""
    return {
        **{name: values[name] for name in AUDITED_FIELDS},
        "status": status.value if status else None,
        "organisation": organisation,
        "organisation_country": organisation_country,
        "topics": sorted(topic_slugs),
    }


def profile_values(contact: Contact) -> dict[str, Any]:
    """A contact's current ProfileData fields, as form data (topics: the active ones' ids)."""
    organisation = contact.organisation
    return {
        "organisation_name": organisation.name if organisation else "",
        "stakeholder_type": organisation.stakeholder_type.value if organisation else "",
        "organisation_country": organisation.country if organisation else None,
        "organisation_website": organisation.website if organisation else "",
        "salutation": contact.salutation or "",
        "given_name": contact.given_name,
        "family_name": contact.family_name,
        **{detail.name: getattr(contact, detail.name) or "" for detail in DETAIL_FIELDS},
        "country": contact.country,
        "language": contact.language,
        "topics": [topic.id for topic in contact.topics if topic.active],
    }
