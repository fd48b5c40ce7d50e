"""The synthetic JEG community: plausible people in plausible organisations, drawn at random.

Pure Python and deterministic for a given random generator; `services` writes the drafts to the
database. The reference data (countries, names, organisation patterns, the real river and lake
commissions) lives in `jeg_contacts/data/demo_world.json`.
"""

import json
import random
import re
import unicodedata
from bisect import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from itertools import accumulate
from typing import Any

from jeg_contacts.contacts.models import ContactStatus, StakeholderType
from jeg_contacts.contacts.services import normalise_organisation_name

HISTORY_MONTHS = 36
# Sign-ups dip in summer and over the holidays, and rise in the meeting seasons.
SEASON = (0.9, 1.0, 1.1, 1.05, 1.0, 1.0, 0.75, 0.55, 1.1, 1.15, 1.1, 0.7)
# Months after a big event (a workshop, a Meeting of the Parties) bring a wave of sign-ups.
EVENT_MONTHS = 5
# Sign-ups younger than this are often still waiting for the confirmation click.
RECENT = timedelta(days=14)
NEW_ORGANISATION_CHANCE = 0.2
NAME_ATTEMPTS = 8
SALUTATIONS = {
    "f": {"ms": 75, "dr": 12, "prof": 3, None: 10},
    "m": {"mr": 75, "dr": 12, "prof": 3, None: 10},
}

_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
# Words left out of invented email domains: "Ministry of the Environment" -> ministry-environment.
_DOMAIN_STOPWORDS = frozenset(
    {"of", "the", "and", "for", "in", "de", "du", "des", "la", "le", "l", "d", "et", "a"}
    | {"pour", "fur", "und", "der", "die", "das", "im", "am"}
)


@cache
def ascii_words(text: str) -> tuple[str, ...]:
    """Lower-case ASCII words of `text`, with Cyrillic transliterated and accents dropped."""
    transliterated = text.casefold().translate(_transliteration())
    decomposed = unicodedata.normalize("NFKD", transliterated)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return tuple(word for word in _NOT_ALPHANUMERIC.split(plain.replace("'", "")) if word)


@cache
def load_world() -> dict[str, Any]:
    raw = resources.files("jeg_contacts").joinpath("data/demo_world.json").read_text()
    return json.loads(raw)


@cache
def _transliteration() -> dict[int, str]:
    """Cyrillic and a few Latin letters without an accent-free decomposition, to ASCII."""
    return str.maketrans(load_world()["transliteration"])


class Weighted:
    """A fixed set of choices with weights, for fast repeated draws."""

    def __init__(self, weights: dict[Any, float]) -> None:
        self.items = list(weights)
        self.cumulative = list(accumulate(weights.values()))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random) -> Any:
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


@dataclass(eq=False)
class OrganisationDraft:
    name: str
    stakeholder_type: StakeholderType
    country: str | None
    website: str | None
    email_domain: str
    # The guidance topic an operator's business is about (oil terminals, tailings, ...).
    focus_topic: str | None = None
    # What organisations are unique on in the database: (normalised name, country).
    key: tuple[str, str | None] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (normalise_organisation_name(self.name), self.country)


@dataclass(eq=False)
class ContactDraft:
    salutation: str | None
    given_name: str
    family_name: str
    job_title: str | None
    email: str
    phone: str | None
    country: str | None
    language: str
    organisation: OrganisationDraft
    status: ContactStatus
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    updated_at: datetime
    topics: list[str]


@dataclass(eq=False)
class _Bucket:
    """The organisations of one stakeholder type in one country, grown as contacts arrive."""

    organisations: list[OrganisationDraft] = field(default_factory=list)
    keys: set[tuple[str, str | None]] = field(default_factory=set)
    # Set once new names stop coming: small countries run out of ministries.
    full: bool = False
    # One entry per contact placed, so popular organisations attract more people.
    placements: list[OrganisationDraft] = field(default_factory=list)


class DemoWorld:
    """Draws one synthetic contact after another from the reference data."""

    def __init__(
        self,
        rng: random.Random,
        topic_slugs: list[str],
        now: datetime,
        *,
        taken_emails: set[str] | None = None,
    ) -> None:
        if not topic_slugs:
            raise ValueError("demo data needs at least one topic")
        self.rng = rng
        self.world = load_world()
        self.topic_slugs = topic_slugs
        self.now = now
        # Lower-cased addresses already in use, in the database or in this run.
        self.taken_emails = taken_emails if taken_emails is not None else set()
        self.countries = self.world["countries"]
        self.country_choice = Weighted({c: v["weight"] for c, v in self.countries.items()})
        self.type_choice = Weighted(
            {StakeholderType(k): v for k, v in self.world["stakeholder_mix"].items()}
        )
        self.status_choice = Weighted(
            {ContactStatus(k): v for k, v in self.world["status_mix"].items()}
        )
        self.recent_status_choice = Weighted(
            {ContactStatus(k): v for k, v in self.world["recent_status_mix"].items()}
        )
        self.topic_count_choice = Weighted(
            {int(k): v for k, v in self.world["topic_count_mix"].items()}
        )
        self.area_choices = {
            code: Weighted(country["name_areas"]) for code, country in self.countries.items()
        }
        self.organisation_language_choices = {
            code: Weighted(country["organisation_languages"])
            for code, country in self.countries.items()
        }
        self.language_choices = self._language_choices()
        self.salutation_choices = {
            gender: Weighted(weights) for gender, weights in SALUTATIONS.items()
        }
        self.home_languages = {
            area: max(names["languages"], key=names["languages"].get)
            for area, names in self.world["name_areas"].items()
        }
        self.topic_choices: dict[tuple[StakeholderType, str, str | None], Weighted] = {}
        self.buckets: dict[tuple[str, StakeholderType], _Bucket] = {}
        self._add_international_bodies()
        self.month_starts, self.month_choice = self._signup_months()

    def _add_international_bodies(self) -> None:
        """River basin commissions (with the countries that are members) and international
        organisations, which contacts of any country may work for."""
        self.commissions = [self._commission(c) for c in self.world["river_commissions"]]
        self.commissions_by_country: dict[str, list[OrganisationDraft]] = {}
        for commission, facts in zip(
            self.commissions, self.world["river_commissions"], strict=True
        ):
            for member in facts["members"]:
                self.commissions_by_country.setdefault(member, []).append(commission)
        self.international = [
            OrganisationDraft(
                name=org["name"],
                stakeholder_type=StakeholderType.INTERNATIONAL_ORGANISATION,
                country=org["country"],
                website=f"https://www.{org['domain']}.example",
                email_domain=f"{org['domain']}.example",
            )
            for org in self.world["international_organisations"]
        ]

    # Contacts -------------------------------------------------------------------------------

    def contact(self) -> ContactDraft:
        """The next synthetic contact."""
        rng = self.rng
        home = self.country_choice.draw(rng)
        stakeholder_type = self.type_choice.draw(rng)
        if (
            stakeholder_type is StakeholderType.RIVER_BASIN_COMMISSION
            and home not in self.commissions_by_country
        ):
            stakeholder_type = StakeholderType.NATIONAL_AUTHORITY
        organisation = self._organisation_for(home, stakeholder_type)
        country = home
        # Most international staff sign up from their duty station, some from home.
        if stakeholder_type is StakeholderType.INTERNATIONAL_ORGANISATION and rng.random() < 0.7:
            country = organisation.country

        area = self.area_choices[home].draw(rng)
        names = self.world["name_areas"][area]
        gender = "f" if rng.random() < 0.5 else "m"
        given_name = rng.choice(names["female" if gender == "f" else "male"])
        family_name = _gendered(rng.choice(names["family"]), gender)
        language = self.language_choices[(home, area)].draw(rng)
        created_at = self._signup_time()
        recent = self.now - created_at < RECENT
        status = (self.recent_status_choice if recent else self.status_choice).draw(rng)
        confirmed_at, unsubscribed_at, updated_at = self._timeline(status, created_at)
        return ContactDraft(
            salutation=self.salutation_choices[gender].draw(rng),
            given_name=given_name,
            family_name=family_name,
            job_title=self._job_title(stakeholder_type, language, area),
            email=self._email(given_name, family_name, organisation.email_domain),
            phone=self._phone(home),
            country=country,
            language=language,
            organisation=organisation,
            status=status,
            created_at=created_at,
            confirmed_at=confirmed_at,
            unsubscribed_at=unsubscribed_at,
            updated_at=updated_at,
            topics=self._topics(stakeholder_type, home, organisation.focus_topic),
        )

    def _language_choices(self) -> dict[tuple[str, str], Weighted]:
        choices = {}
        for code, country in self.countries.items():
            overrides = country.get("languages", {})
            for area in country["name_areas"]:
                weights = overrides.get(area) or self.world["name_areas"][area]["languages"]
                choices[(code, area)] = Weighted(weights)
        return choices

    def _job_title(self, stakeholder_type: StakeholderType, language: str, area: str) -> str | None:
        rng = self.rng
        if rng.random() < 0.2:
            return None
        titles = self.world["job_titles"]
        # A French or Russian title only from people who mostly write French or Russian.
        if language in titles and language == self.home_languages[area] and rng.random() < 0.6:
            return rng.choice(titles[language])
        return rng.choice(titles[stakeholder_type.value])

    def _phone(self, country: str) -> str | None:
        rng = self.rng
        if rng.random() < 0.65:
            return None
        code = self.countries[country]["phone"]
        return f"{code} {rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"

    def _email(self, given_name: str, family_name: str, domain: str) -> str:
        local = ".".join(
            "".join(words) for words in (ascii_words(given_name), ascii_words(family_name))
        )
        address = f"{local}@{domain}"
        number = 1
        while address in self.taken_emails:
            number += 1
            address = f"{local}{number}@{domain}"
        self.taken_emails.add(address)
        return address

    def _topics(
        self, stakeholder_type: StakeholderType, country: str, focus_topic: str | None
    ) -> list[str]:
        key = (stakeholder_type, country, focus_topic)
        choice = self.topic_choices.get(key)
        if choice is None:
            affinity = self.world["topic_affinity"][stakeholder_type.value]
            boost = self.countries[country].get("topic_boost", {})
            weights = {
                slug: affinity.get(slug, 1) + boost.get(slug, 0) for slug in self.topic_slugs
            }
            if focus_topic in weights:
                weights[focus_topic] += self.world["operator_focus_weight"]
            choice = self.topic_choices[key] = Weighted(weights)
        wanted = min(self.topic_count_choice.draw(self.rng), len(self.topic_slugs))
        # Drawing again on a repeat samples without replacement; at most 5 of 10 keeps it short.
        chosen: list[str] = []
        while len(chosen) < wanted:
            slug = choice.draw(self.rng)
            if slug not in chosen:
                chosen.append(slug)
        return chosen

    # Time -----------------------------------------------------------------------------------

    def _signup_months(self) -> tuple[list[datetime], Weighted]:
        start = self.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        months = [start]
        for _ in range(HISTORY_MONTHS - 1):
            months.insert(0, (months[0] - timedelta(days=1)).replace(day=1))
        busy = set(self.rng.sample(range(HISTORY_MONTHS - 1), EVENT_MONTHS))
        weights = {}
        for index, month in enumerate(months):
            growth = 0.5 + index / (HISTORY_MONTHS - 1)
            weight = growth * SEASON[month.month - 1] * (2.0 if index in busy else 1.0)
            if index == HISTORY_MONTHS - 1:  # the current month has only just begun
                weight *= (self.now - month) / timedelta(days=30.4)
            weights[index] = max(weight, 0.001)
        return months, Weighted(weights)

    def _signup_time(self) -> datetime:
        index = self.month_choice.draw(self.rng)
        start = self.month_starts[index]
        end = self.month_starts[index + 1] if index + 1 < len(self.month_starts) else self.now
        return start + (end - start) * self.rng.random()

    def _timeline(
        self, status: ContactStatus, created_at: datetime
    ) -> tuple[datetime | None, datetime | None, datetime]:
        """When the contact confirmed, unsubscribed and was last changed."""
        rng = self.rng
        if status is ContactStatus.PENDING:
            return None, None, created_at
        # Most people click the link within the hour; some come back days later.
        delay = rng.expovariate(1 / 2400)
        if rng.random() < 0.1:
            delay += rng.uniform(3600, 3 * 86400)
        confirmed_at = min(created_at + timedelta(seconds=delay), self.now)
        if status is ContactStatus.ACTIVE:
            return confirmed_at, None, confirmed_at
        left_at = confirmed_at + (self.now - confirmed_at) * rng.random()
        if status is ContactStatus.UNSUBSCRIBED:
            return confirmed_at, left_at, left_at
        return confirmed_at, None, left_at

    # Organisations --------------------------------------------------------------------------

    def _commission(self, facts: dict[str, Any]) -> OrganisationDraft:
        acronym = facts["acronym"]
        name = facts["name"]
        # Spelled-out names with a plain acronym read "Name (ACRONYM)", as people write them.
        if acronym.isupper() and " " not in acronym and "(" not in name:
            name = f"{name} ({acronym})"
        return OrganisationDraft(
            name=name,
            stakeholder_type=StakeholderType.RIVER_BASIN_COMMISSION,
            country=facts["country"],
            website=facts["website"],
            email_domain="-".join(ascii_words(acronym)) + ".example",
        )

    def _organisation_for(
        self, country: str, stakeholder_type: StakeholderType
    ) -> OrganisationDraft:
        """An organisation of this type for someone from `country`: a commission their country
        belongs to, an international partner, or one of the country's own organisations."""
        rng = self.rng
        if stakeholder_type is StakeholderType.RIVER_BASIN_COMMISSION:
            return rng.choice(self.commissions_by_country[country])
        if stakeholder_type is StakeholderType.INTERNATIONAL_ORGANISATION:
            return rng.choice(self.international)
        bucket = self.buckets.setdefault((country, stakeholder_type), _Bucket())
        organisation = None
        if not bucket.organisations or (not bucket.full and rng.random() < NEW_ORGANISATION_CHANCE):
            organisation = self._new_organisation(country, stakeholder_type, bucket)
        if organisation is None:
            # Half the time anyone, half the time in proportion to size: a few big employers.
            pool = bucket.organisations if rng.random() < 0.5 else bucket.placements
            organisation = rng.choice(pool)
        bucket.placements.append(organisation)
        return organisation

    def _new_organisation(
        self, country: str, stakeholder_type: StakeholderType, bucket: _Bucket
    ) -> OrganisationDraft | None:
        """A new organisation with a name not yet used in this bucket, or None (and the bucket
        marked full) when a few attempts find none."""
        for _ in range(NAME_ATTEMPTS):
            draft = self._organisation_draft(country, stakeholder_type)
            if draft.key not in bucket.keys:
                bucket.keys.add(draft.key)
                bucket.organisations.append(draft)
                return draft
        bucket.full = True
        return None

    def _organisation_draft(
        self, country: str, stakeholder_type: StakeholderType
    ) -> OrganisationDraft:
        rng = self.rng
        facts = self.countries[country]
        language = self.organisation_language_choices[country].draw(rng)
        focus_topic = None
        if stakeholder_type is StakeholderType.OPERATOR:
            by_topic = self.world["operator_templates"]
            boost = facts.get("topic_boost", {})
            focus_topic = Weighted({slug: 1 + boost.get(slug, 0) for slug in by_topic["en"]}).draw(
                rng
            )
            template = rng.choice(by_topic[language][focus_topic])
        else:
            template = rng.choice(self.world["organisation_templates"][stakeholder_type][language])
        cities = facts["cities"].get(language) or facts["cities"]["en"]
        brands = self.world["brands"].get(language) or self.world["brands"]["default"]
        # Consultancies carry a family name of the country's main language.
        main_area = self.area_choices[country].items[0]
        family_names = self.world["name_areas"][main_area]["family"]
        name = " ".join(
            template.format(
                city=rng.choice(cities),
                brand=rng.choice(brands),
                legal=facts["legal_form"],
                family=_gendered(rng.choice(family_names), "m"),
            ).split()
        )
        legal_words = set(ascii_words(facts["legal_form"]))
        words = [
            word
            for word in ascii_words(name)
            if word not in _DOMAIN_STOPWORDS and word not in legal_words
        ]
        domain = f"{'-'.join(words[:3])}.{country.lower()}.example"
        return OrganisationDraft(
            name=name,
            stakeholder_type=stakeholder_type,
            country=country,
            website=f"https://www.{domain}" if rng.random() < 0.7 else None,
            email_domain=domain,
            focus_topic=focus_topic,
        )


def _gendered(family_name: str, gender: str) -> str:
    """'Ivanov|Ivanova' -> the form for `gender`; names without forms are returned as they are."""
    masculine, _, feminine = family_name.partition("|")
    return feminine if gender == "f" and feminine else masculine
