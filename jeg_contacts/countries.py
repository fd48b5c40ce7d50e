"""ISO 3166-1 countries with names in the reader's language; UNECE member States listed first."""

import json
from functools import cache
from importlib import resources

import pycountry
from babel import Locale


@cache
def iso_codes() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


@cache
def unece_member_codes() -> tuple[str, ...]:
    raw = resources.files("jeg_contacts").joinpath("data/unece_member_states.json").read_text()
    return tuple(state["alpha2"] for state in json.loads(raw)["states"])


def country_name(code: str, language: str) -> str:
    """The country's name in `language` (CLDR), else its ISO English name, else the code."""
    name = Locale.parse(language).territories.get(code)
    if name:
        return name
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country else code


@cache
def country_choices(language: str) -> tuple[tuple[str, str], ...]:
    """(code, name) pairs: UNECE member States, then every other country, each sorted by name."""
    unece = set(unece_member_codes())

    def by_name(codes: set[str]) -> list[tuple[str, str]]:
        named = [(code, country_name(code, language)) for code in codes]
        return sorted(named, key=lambda pair: pair[1].casefold())

    return (*by_name(unece), *by_name(set(iso_codes()) - unece))


def country_groups(language: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """country_choices() split into the two groups the back office's pickers show."""
    unece = set(unece_member_codes())
    choices = country_choices(language)
    return [
        ("UNECE member States", [pair for pair in choices if pair[0] in unece]),
        ("Other countries", [pair for pair in choices if pair[0] not in unece]),
    ]
