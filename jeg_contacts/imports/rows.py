"""One imported row against the sign-up rules."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# The rules are called through their module, so a rule changed there is changed here too.
from jeg_contacts.contacts import services as rules
from jeg_contacts.contacts.models import (
    ContactStatus,
    StakeholderType,
)
from jeg_contacts.contacts.services import DETAIL_FIELDS, normalise_organisation_name
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.imports.mapping import Vocabulary, salutation_code, words
from jeg_contacts.text import email_key, normalise_email

# The names the rules of contacts.services give their fields, as people read them.
RULE_LABELS = {
    "organisation_name": "Organisation",
    "stakeholder_type": "Type of organisation",
    "organisation_country": "Organisation country",
    "organisation_website": "Organisation website",
    "salutation": "Salutation",
    "given_name": "Given name",
    "family_name": "Family name",
    **{detail.name: detail.label for detail in DETAIL_FIELDS},
    "country": "Country",
    "language": "Language",
    "topics": "Topics",
    "email": "Email",
    "status": "Status",
}


@dataclass(slots=True)
class Base:
    """Values a row starts from: a new contact's defaults, or what an existing one has."""

    organisation_name: str = ""
    stakeholder_type: str = ""
    organisation_country: str = ""
    organisation_website: str = ""
    salutation: str = ""
    given_name: str = ""
    family_name: str = ""
    # The contact's DETAIL_FIELDS, by name.
    details: dict[str, str] = field(default_factory=dict)
    country: str = ""
    language: str = ""
    topic_ids: tuple[int, ...] = ()
    archived_topic_ids: tuple[int, ...] = ()
    status: ContactStatus | None = None


@dataclass(slots=True)
class CheckedRow:
    """A row that passed every rule: the values to write."""

    number: int
    email: str
    key: str
    organisation_name: str
    organisation_key: tuple[str, str]
    stakeholder_type: StakeholderType
    organisation_country: str
    organisation_website: str | None
    salutation: str | None
    given_name: str
    family_name: str
    details: dict[str, str | None]  # the contact's DETAIL_FIELDS, by name
    country: str
    language: str
    topic_ids: tuple[int, ...]
    status: ContactStatus


class _Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, error: ValidationFailed) -> None:
        label = RULE_LABELS.get(error.field, error.field.replace("_", " ").capitalize())
        self.messages.append(f"{label}: {error.message}")

    def check(
        self, rule: Callable[[], Any], *, reworded: Callable[[], str | None] | None = None
    ) -> Any:
        """rule()'s outcome, or None with its failure noted, in the file's words when
        `reworded` gives some (it is only called on failure)."""
        try:
            return rule()
        except ValidationFailed as error:
            message = reworded() if reworded else None
            self.add(ValidationFailed(error.field, message) if message else error)
            return None


def _split_full_name(full_name: str) -> tuple[str, str]:
    """("Ana Maria", "Silva") from "Ana Maria Silva" or "Silva, Ana Maria"."""
    if "," in full_name:
        family, _, given = full_name.partition(",")
        return given.strip(), family.strip()
    words = full_name.split()
    if len(words) < 2:
        return "", full_name.strip()
    return " ".join(words[:-1]), words[-1]


def check_row(
    values: dict[str, str],
    base: Base,
    vocabulary: "Vocabulary",
    *,
    number: int = 0,
    import_status: ContactStatus = ContactStatus.ACTIVE,
    email: str | ValidationFailed | None = None,
) -> CheckedRow | list[str]:
    """The row's values checked with the sign-up rules, each problem listed; empty cells take
    the value from `base`.

    The rules are contacts.services' own (those check_profile applies, and normalise_email);
    what is done here is reading a file's words (labels, country and language names, topic
    names) into the values those rules take, and listing every failure instead of the first.
    Organisations and topics come from `vocabulary`, looked up once per import.

    `email` is the outcome of normalise_email on the row's address, when already known."""
    # The checks run in the order of the form, so a row's problems read in that order too.
    row = _RowCheck(values, base, vocabulary)
    email = row.email(email)
    organisation_name, stakeholder_type, organisation_country, website = row.organisation()
    salutation, given_name, family_name, details = row.person()
    country = row.country()
    language = row.language()
    topic_ids = row.topics()
    status = row.status(import_status)
    if row.problems.messages:
        return row.problems.messages
    organisation_key = (_organisation_key(organisation_name), organisation_country)
    return CheckedRow(
        number=number,
        email=email,
        key=email_key(email),
        organisation_name=organisation_name,
        organisation_key=organisation_key,
        stakeholder_type=stakeholder_type,
        organisation_country=organisation_country,
        organisation_website=website or None,
        salutation=salutation or None,
        given_name=given_name,
        family_name=family_name,
        details=details,
        country=country or organisation_country,
        language=language,
        topic_ids=tuple(sorted(topic_ids, key=vocabulary.topic_order)),
        status=status,
    )


class _RowCheck:
    """check_row's steps, a group of fields each, noting every failure in `problems`."""

    __slots__ = ("base", "problems", "values", "vocabulary")

    def __init__(self, values: dict[str, str], base: Base, vocabulary: Vocabulary) -> None:
        self.values = values
        self.base = base
        self.vocabulary = vocabulary
        self.problems = _Problems()

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, "").strip() or default

    def email(self, email: str | ValidationFailed | None) -> str | None:
        if email is None:
            return self.problems.check(lambda: normalise_email(self.values.get("email", "")))
        if isinstance(email, ValidationFailed):
            self.problems.add(email)
            return None
        return email

    def organisation(self) -> tuple[Any, Any, Any, Any]:
        """The organisation's name, type, country and website."""
        base, vocabulary, value, problems = self.base, self.vocabulary, self.value, self.problems
        organisation_name = problems.check(
            lambda: rules.check_organisation_name(value("organisation", base.organisation_name))
        )
        raw_type = value("stakeholder_type", base.stakeholder_type)
        stakeholder_type = problems.check(
            lambda: rules.check_stakeholder_type(
                vocabulary.types.get(words(raw_type)) if raw_type else ""
            ),
            reworded=lambda: _not_a_type(raw_type) if raw_type else None,
        )
        # A new contact's organisation is taken to be in the person's country when the file
        # names only one; an existing contact keeps its organisation's country.
        raw_organisation_country = value("organisation_country") or (
            "" if base.organisation_country else value("country")
        )
        organisation_country = problems.check(
            lambda: _country(
                "organisation_country",
                vocabulary.country(raw_organisation_country) or base.organisation_country,
                raw_organisation_country,
                required=True,
            )
        )
        website = problems.check(
            lambda: rules.check_website(value("organisation_website", base.organisation_website))
        )
        return organisation_name, stakeholder_type, organisation_country, website

    def person(self) -> tuple[Any, Any, Any, dict[str, str | None]]:
        """The salutation, given and family names, and the contact's DETAIL_FIELDS."""
        base, value, problems = self.base, self.value, self.problems
        raw_salutation = value("salutation")
        salutation = problems.check(
            lambda: rules.check_salutation(
                salutation_code(raw_salutation) if raw_salutation else base.salutation
            ),
            reworded=lambda: f"“{raw_salutation}” is not one of Ms, Mr, Mx, Dr or Prof.",
        )
        given, family = value("given_name"), value("family_name")
        if (not given or not family) and value("full_name"):
            split_given, split_family = _split_full_name(value("full_name"))
            given, family = given or split_given, family or split_family
        given_name = problems.check(
            lambda: rules.clean_person_name("given_name", given or base.given_name)
        )
        family_name = problems.check(
            lambda: rules.clean_person_name("family_name", family or base.family_name)
        )
        details: dict[str, str | None] = {}
        for detail in DETAIL_FIELDS:
            try:
                details[detail.name] = (
                    detail.check(value(detail.name, base.details.get(detail.name, ""))) or None
                )
            except ValidationFailed as error:
                problems.add(error)
        return salutation, given_name, family_name, details

    def country(self) -> str | None:
        raw_country = self.value("country")
        return self.problems.check(
            lambda: _country(
                "country", self.vocabulary.country(raw_country) or self.base.country, raw_country
            )
        )

    def language(self) -> Any:
        raw_language = self.value("language")
        return self.problems.check(
            lambda: rules.check_language(
                self.vocabulary.languages.get(words(raw_language))
                if raw_language
                else self.base.language
            ),
            reworded=lambda: (
                f"“{raw_language}” is not English, French or Russian." if raw_language else None
            ),
        )

    def topics(self) -> list[int]:
        """The active topics the row names, or the base's; archived and unknown ones refused."""
        problems = self.problems
        topic_ids = list(self.base.topic_ids)
        if self.value("topics"):
            topics, unknown = self.vocabulary.parse_topics(self.value("topics"))
            archived = [topic for topic in topics if not topic.active]
            if unknown:
                problems.add(
                    ValidationFailed("topics", f"No topic is called “{'”, “'.join(unknown)}”.")
                )
            elif archived:
                problems.add(
                    ValidationFailed(
                        "topics",
                        f"“{archived[0].label_en}” is archived; "
                        "contacts can no longer subscribe to it.",
                    )
                )
            topic_ids = [topic.id for topic in topics if topic.active]
        if not any(message.startswith("Topics:") for message in problems.messages):
            problems.check(lambda: rules.check_topics_chosen(topic_ids))
        return topic_ids

    def status(self, import_status: ContactStatus) -> ContactStatus:
        status = self.base.status or import_status
        raw_status = self.value("status")
        if raw_status and self.base.status is None:
            chosen = self.vocabulary.statuses.get(words(raw_status))
            if chosen is None:
                self.problems.add(
                    ValidationFailed(
                        "status",
                        f"“{raw_status}” cannot be imported; use active, pending, unsubscribed "
                        "or bounced (or leave it empty).",
                    )
                )
            elif chosen is not ContactStatus.ACTIVE:
                # A row may only be more careful than the import: someone who never confirmed,
                # or who unsubscribed, is not made active by being imported.
                status = chosen
        return status


def _not_a_type(raw: str) -> str:
    known = ", ".join(member.label for member in StakeholderType)
    return f"“{raw}” is not a type of organisation; use one of: {known}."


# The same organisations recur on many rows.
_organisation_key = lru_cache(maxsize=65536)(normalise_organisation_name)


def _country(field_name: str, code: str, raw: str, *, required: bool = False) -> str | None:
    try:
        return rules.check_country(field_name, code, required=required)
    except ValidationFailed as error:
        if raw and code == raw:
            raise ValidationFailed(field_name, f"“{raw}” is not a country we know.") from None
        raise error from None
