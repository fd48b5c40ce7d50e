"""Reading a contact list's columns: which field each holds, named in English, French or
Russian, and the values of those fields as people write them in the three languages."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache

import pycountry
import sqlalchemy as sa
from babel import Locale
from flask_babel import force_locale

from jeg_contacts.contacts.models import (
    STAKEHOLDER_TYPE_LABELS,
    ContactStatus,
    StakeholderType,
    Topic,
    search_key,
)
from jeg_contacts.contacts.services import DETAIL_FIELDS
from jeg_contacts.countries import iso_codes
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES


class _ImportFields(StrEnum):
    """The fields a column of a contact list can hold."""

    @property
    def label(self) -> str:
        return FIELD_LABELS[self]


# The contact's details (contacts.services.DETAIL_FIELDS) come after the names, in their order.
ImportField = _ImportFields(
    "ImportField",
    [
        ("EMAIL", "email"),
        ("SALUTATION", "salutation"),
        ("GIVEN_NAME", "given_name"),
        ("FAMILY_NAME", "family_name"),
        ("FULL_NAME", "full_name"),
        *((detail.name.upper(), detail.name) for detail in DETAIL_FIELDS),
        ("COUNTRY", "country"),
        ("LANGUAGE", "language"),
        ("ORGANISATION", "organisation"),
        ("STAKEHOLDER_TYPE", "stakeholder_type"),
        ("ORGANISATION_COUNTRY", "organisation_country"),
        ("ORGANISATION_WEBSITE", "organisation_website"),
        ("TOPICS", "topics"),
        ("STATUS", "status"),
    ],
    module=__name__,
)

FIELD_LABELS = {
    ImportField.EMAIL: "Email",
    ImportField.SALUTATION: "Salutation",
    ImportField.GIVEN_NAME: "Given name",
    ImportField.FAMILY_NAME: "Family name",
    ImportField.FULL_NAME: "Full name (given, then family name)",
    **{ImportField(detail.name): detail.label for detail in DETAIL_FIELDS},
    ImportField.COUNTRY: "Country",
    ImportField.LANGUAGE: "Language",
    ImportField.ORGANISATION: "Organisation",
    ImportField.STAKEHOLDER_TYPE: "Type of organisation",
    ImportField.ORGANISATION_COUNTRY: "Organisation country",
    ImportField.ORGANISATION_WEBSITE: "Organisation website",
    ImportField.TOPICS: "Topics",
    ImportField.STATUS: "Status",
}

# Column names recognised in English, French and Russian, compared as `words` leaves them
# (a detail's own names, as people write them, are put through `words` like the file's).
_ALIASES = {
    ImportField.EMAIL: (
        "email", "e mail", "email address", "e mail address", "mail", "courriel",
        "adresse courriel", "adresse electronique", "adresse e mail", "adresse email", "mel",
        "электронная почта", "эл почта", "адрес электронной почты", "почта", "e mail адрес",
    ),
    ImportField.SALUTATION: (
        "salutation", "civilite", "titre de civilite", "honorific", "prefix", "обращение",
    ),
    ImportField.GIVEN_NAME: ("given name", "first name", "firstname", "forename", "prenom", "имя"),
    ImportField.FAMILY_NAME: (
        "family name", "last name", "lastname", "surname", "nom", "nom de famille", "фамилия",
    ),
    ImportField.FULL_NAME: (
        "name", "full name", "contact name", "contact", "nom complet", "nom et prenom",
        "prenom et nom", "имя и фамилия",
    ),
    **{
        ImportField(detail.name): (detail.label, *detail.import_names)
        for detail in DETAIL_FIELDS
    },
    ImportField.COUNTRY: ("country", "country name", "pays", "страна", "country of residence"),
    ImportField.LANGUAGE: ("language", "langue", "язык", "preferred language", "langue preferee"),
    ImportField.ORGANISATION: (
        "organisation", "organization", "organisation name", "organization name",
        "institution", "agency", "company", "employer", "organisme", "societe", "entreprise",
        "nom de l organisation", "организация", "учреждение", "название организации",
    ),
    ImportField.STAKEHOLDER_TYPE: (
        "type", "type of organisation", "type of organization", "organisation type",
        "organization type", "stakeholder type", "type d organisation", "type d organisme",
        "type de l organisation", "тип организации",
    ),
    ImportField.ORGANISATION_COUNTRY: (
        "organisation country", "organization country", "country of the organisation",
        "pays de l organisation", "страна организации",
    ),
    ImportField.ORGANISATION_WEBSITE: (
        "website", "web site", "url", "site web", "site internet", "organisation website",
        "organization website", "веб сайт", "сайт",
    ),
    ImportField.TOPICS: (
        "topics", "topic", "topic names", "interests", "subscriptions", "themes", "theme",
        "sujets", "темы", "тематика",
    ),
    ImportField.STATUS: ("status", "statut", "статус"),
}  # fmt: skip

_PUNCTUATION = re.compile(r"[^\w]+")


# Values such as countries, types and languages repeat on most rows.
@lru_cache(maxsize=65536)
def words(text: str) -> str:
    """Casefolded, accent-free words without punctuation: how names and values are matched."""
    return " ".join(_PUNCTUATION.sub(" ", search_key(text)).split())


_ALIAS_FIELDS = {words(alias): f for f, aliases in _ALIASES.items() for alias in aliases}


def _split_camel_case(name: str) -> str:
    """Spaces where a word ends inside camelCase, in any script: a lower-case letter or digit
    before a capital ("familyName"), or an acronym's last capital before a word
    ("EMailAddress")."""
    out = []
    for i, char in enumerate(name):
        if i and char.isupper():
            before, after = name[i - 1], name[i + 1 : i + 2]
            if before.islower() or before.isdigit() or (before.isupper() and after.islower()):
                out.append(" ")
        out.append(char)
    return "".join(out)


def _header_words(name: str) -> str:
    """A column name as `words` leaves it, once camelCase and snake_case are split into words,
    so that "familyName", "FAMILY-NAME" and "family_name" all read "family name"."""
    return words(_split_camel_case(name).replace("_", " "))


def suggest_mapping(header: Iterable[str]) -> list[str]:
    """The field each column seems to hold ("" for none); a field goes to its first column."""
    mapping, taken = [], set()
    for name in header:
        suggested = _ALIAS_FIELDS.get(_header_words(name))
        if suggested is None or suggested in taken:
            mapping.append("")
        else:
            mapping.append(suggested.value)
            taken.add(suggested)
    return mapping


@dataclass(frozen=True)
class ImportSettings:
    """How to read the rows: which column holds which field, and what to do with them."""

    mapping: tuple[str, ...]
    # Pending unless staff choose otherwise: the people on a list never signed up themselves.
    status: ContactStatus = ContactStatus.PENDING
    # Why the people on the list agreed to be contacted; required to import them as active.
    basis: str = ""
    update_existing: bool = False
    default_type: str = ""
    default_language: str = "en"
    default_topic_ids: tuple[int, ...] = ()


def mapping_problems(settings: ImportSettings, header: list[str]) -> list[str]:
    """Why no row could be imported with these settings; empty when they can work."""
    problems = []
    fields = [value for value in settings.mapping if value]
    unknown = sorted({value for value in fields if value not in ImportField.__members__.values()})
    if unknown:
        problems.append(f"Unknown field {unknown[0]!r}.")
    repeated = sorted({value for value in fields if fields.count(value) > 1})
    for value in repeated:
        columns = [header[i] for i, v in enumerate(settings.mapping) if v == value]
        problems.append(
            f"{ImportField(value).label} is chosen for several columns ({', '.join(columns)}); "
            "choose it for one only."
        )
    mapped = set(fields)
    if ImportField.EMAIL not in mapped:
        problems.append("Choose the column that holds the email addresses.")
    if settings.update_existing:
        # A file that updates contacts may hold a few columns only; a new contact in it is
        # then rejected on its own row, with the reason.
        return problems
    if (
        ImportField.FULL_NAME not in mapped
        and not {
            ImportField.GIVEN_NAME,
            ImportField.FAMILY_NAME,
        }
        <= mapped
    ):
        problems.append(
            "Choose the columns with the given and family names, or one column with full names."
        )
    if ImportField.ORGANISATION not in mapped:
        problems.append("Choose the column that holds the organisations.")
    if not mapped & {ImportField.ORGANISATION_COUNTRY, ImportField.COUNTRY}:
        problems.append("Choose the column with the organisations' (or the people's) countries.")
    if ImportField.STAKEHOLDER_TYPE not in mapped and not settings.default_type:
        problems.append(
            "Choose the column with the types of organisation, or one type for every row."
        )
    if ImportField.TOPICS not in mapped and not settings.default_topic_ids:
        problems.append("Choose the column with the topics, or topics for every row.")
    if settings.status not in (ContactStatus.ACTIVE, ContactStatus.PENDING):
        problems.append("New contacts are imported as active or as pending.")
    if settings.default_language not in LANGUAGES:
        problems.append("Choose English, French or Russian as the default language.")
    return problems


# --- Reading values in the three languages --------------------------------------------------


# Cyrillic spellings look like Latin letters to the linter; they are meant.
_SALUTATION_WORDS = {
    "ms": (
        "ms", "mrs", "miss", "madam", "madame", "mme", "mlle", "mademoiselle",
        "г жа", "госпожа",  # noqa: RUF001
    ),
    "mr": ("mr", "sir", "monsieur", "m", "г н", "господин"),  # noqa: RUF001
    "mx": ("mx",),
    "dr": ("dr", "doctor", "docteur", "д р", "доктор"),  # noqa: RUF001
    "prof": ("prof", "professor", "professeur", "проф", "профессор"),
}  # fmt: skip
_LANGUAGE_WORDS = {
    "en": ("en", "eng", "english", "anglais", "английский", "англ"),
    "fr": ("fr", "fra", "fre", "french", "francais", "французский", "франц"),
    "ru": ("ru", "rus", "russian", "russe", "русский", "рус"),  # noqa: RUF001
}  # fmt: skip
_TYPE_WORDS = {
    StakeholderType.NGO: ("ngo", "ong", "нпо", "нко"),
    StakeholderType.UNIVERSITY: ("university", "universite", "университет"),
    StakeholderType.OPERATOR: ("operator", "industry", "exploitant", "industrie", "оператор"),
}


@cache
def _country_codes() -> dict[str, str]:
    """Every way of writing a country we recognise, mapped to its ISO code."""
    codes = iso_codes()
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for name in (
            getattr(country, "common_name", None),
            getattr(country, "official_name", None),
            country.name,
        ):
            if name:
                names.setdefault(words(name), country.alpha_2)
        names[words(country.alpha_3)] = country.alpha_2
    for language in LANGUAGES:
        for code, name in Locale.parse(language).territories.items():
            if code in codes:
                names.setdefault(words(name), code)
    for code in codes:
        names[words(code)] = code
    return names


def salutation_code(raw: str) -> str:
    return _salutations().get(words(raw), raw)


@cache
def _salutations() -> dict[str, str]:
    return {
        words(spelling): code
        for code, spellings in _SALUTATION_WORDS.items()
        for spelling in spellings
    }


class Vocabulary:
    """Values of one import: topics and types as the database and the three languages name them."""

    def __init__(self) -> None:
        self.types: dict[str, StakeholderType] = {}
        for member in StakeholderType:
            self.types[words(member.value)] = member
            for language in LANGUAGES:
                with force_locale(language):
                    self.types[words(str(STAKEHOLDER_TYPE_LABELS[member]))] = member
        for member, spellings in _TYPE_WORDS.items():
            for spelling in spellings:
                self.types.setdefault(words(spelling), member)
        self.languages = {
            words(spelling): code
            for code, spellings in _LANGUAGE_WORDS.items()
            for spelling in spellings
        }
        self.topics: dict[int, Topic] = {
            topic.id: topic for topic in db.session.scalars(sa.select(Topic))
        }
        self.topic_names: dict[str, Topic] = {}
        for topic in self.topics.values():
            for name in (topic.slug, topic.label_en, topic.label_fr, topic.label_ru):
                self.topic_names.setdefault(words(name), topic)
        self.statuses = {
            member.value: member
            for member in (
                ContactStatus.ACTIVE,
                ContactStatus.PENDING,
                ContactStatus.UNSUBSCRIBED,
                ContactStatus.BOUNCED,
            )
        }

    def topic_order(self, topic_id: int) -> tuple[int, int]:
        return (self.topics[topic_id].position, topic_id)

    def country(self, raw: str) -> str:
        return _country_codes().get(words(raw), raw) if raw else ""

    def parse_topics(self, raw: str) -> tuple[list[Topic], list[str]]:
        """The topics a cell names, and the pieces that name no topic."""
        pieces = [piece for piece in re.split(r"[;|\n]", raw) if piece.strip()]
        if len(pieces) == 1 and words(pieces[0]) not in self.topic_names:
            pieces = [piece for piece in pieces[0].split(",") if piece.strip()]
        found, unknown = [], []
        for piece in pieces:
            topic = self.topic_names.get(words(piece))
            if topic is None:
                unknown.append(piece.strip())
            elif topic not in found:
                found.append(topic)
        return found, unknown
