"""ContactFilter and the sort keys: which contacts match, in which order."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.datastructures import MultiDict

from jeg_contacts.audiences.services import (
    ContactFilter,
    describe_filter,
    filter_contacts,
    normalise_sort,
    sort_contacts,
)
from jeg_contacts.contacts.models import Contact, ContactStatus, StakeholderType
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact, topic_id


def matching_ids(app: Flask, contact_filter: ContactFilter, sort: str = "name") -> list[int]:
    with app.app_context():
        query = sort_contacts(filter_contacts(sa.select(Contact.id), contact_filter), sort)
        return list(db.session.scalars(query))


def test_filter_round_trips_through_query_arguments(app):
    pipelines, exercises = topic_id(app, "pipelines"), topic_id(app, "response-exercises")
    original = ContactFilter(
        q="Zoë Müller",
        topic_ids=(pipelines, exercises),
        stakeholder_types=(StakeholderType.NGO, StakeholderType.UNIVERSITY),
        countries=("DE", "FR"),
        languages=("fr",),
        statuses=(ContactStatus.ACTIVE, ContactStatus.ERASED),
        created_from=date(2026, 1, 1),
        created_to=date(2026, 3, 31),
    )
    args = original.to_args()

    assert args["country"] == ["DE", "FR"]
    assert args["since"] == ["2026-01-01"]
    with app.test_request_context():
        assert ContactFilter.from_args(MultiDict(args)) == original


def test_empty_filter_has_no_arguments():
    assert ContactFilter().to_args() == {}
    assert ContactFilter.from_args(MultiDict()).is_empty


def test_meaningless_arguments_are_ignored_not_refused(app):
    args = MultiDict(
        [
            ("q", "  spaced    out  "),
            ("topic", "abc"),
            ("topic", "3"),
            ("type", "spaceship"),
            ("country", "XX"),
            ("country", "de"),
            ("country", "FR"),
            ("language", "de"),
            ("status", "zombie"),
            ("status", "active"),
            ("status", "active"),
            ("since", "2026-02-30"),
            ("until", "yesterday"),
        ]
    )
    with app.test_request_context():
        parsed = ContactFilter.from_args(args)

    assert parsed == ContactFilter(
        q="spaced out", topic_ids=(3,), countries=("FR",), statuses=(ContactStatus.ACTIVE,)
    )


def test_unknown_sort_keys_fall_back_to_name():
    assert normalise_sort("-signed_up") == "-signed_up"
    assert normalise_sort("password_hash") == "name"
    assert normalise_sort("-") == "name"
    assert normalise_sort(None) == "name"


@pytest.mark.parametrize("query", ["muller", "MÜLLER", "Muller", "müll", "  müller  "])
def test_search_ignores_case_and_accents_in_names(app, query):
    zoe = make_contact(app, given_name="Zoë", family_name="Müller")
    make_contact(app, given_name="Jean", family_name="Dupont")

    assert matching_ids(app, ContactFilter(q=query.strip())) == [zoe]


def test_search_in_capitals_finds_accented_given_name(app):
    zoe = make_contact(app, given_name="Zoë", family_name="Müller")
    make_contact(app, given_name="Zora", family_name="Petrova")

    assert matching_ids(app, ContactFilter(q="ZOE")) == [zoe]


def test_search_matches_email_and_organisation_too(app):
    by_email = make_contact(app, family_name="Alpha", email="Water.Safety@Example.org")
    by_organisation = make_contact(
        app, family_name="Beta", organisation="Université de Genève", organisation_country="CH"
    )
    make_contact(app, family_name="Gamma")

    assert matching_ids(app, ContactFilter(q="water.safety@example")) == [by_email]
    assert matching_ids(app, ContactFilter(q="universite GENEVE")) == [by_organisation]


def test_every_search_word_must_match_somewhere(app):
    zoe_at_uba = make_contact(app, given_name="Zoë", family_name="Müller")
    make_contact(
        app,
        given_name="Zoë",
        family_name="Weber",
        organisation="Ministère",
        organisation_country="FR",
    )

    assert matching_ids(app, ContactFilter(q="zoe umweltbundesamt")) == [zoe_at_uba]
    assert matching_ids(app, ContactFilter(q="muller zoe")) == [zoe_at_uba]
    assert matching_ids(app, ContactFilter(q="zoe nobody")) == []


def test_search_wildcards_are_taken_literally(app):
    make_contact(app, family_name="Percent")

    assert matching_ids(app, ContactFilter(q="%")) == []
    assert matching_ids(app, ContactFilter(q="_")) == []


def test_erased_contacts_are_hidden_unless_asked_for(app):
    kept = make_contact(app, family_name="Kept")
    erased = make_contact(app, family_name="Gone", status="erased")

    assert matching_ids(app, ContactFilter()) == [kept]
    assert matching_ids(app, ContactFilter(statuses=(ContactStatus.ERASED,))) == [erased]
    both = ContactFilter(statuses=(ContactStatus.ACTIVE, ContactStatus.ERASED))
    assert sorted(matching_ids(app, both)) == sorted([kept, erased])


def test_filters_combine_and_topics_match_any(app):
    pipelines, terminals = topic_id(app, "pipelines"), topic_id(app, "oil-terminals")
    de_pipelines = make_contact(app, family_name="A", topics=("pipelines",))
    de_terminals = make_contact(app, family_name="B", topics=("oil-terminals", "general-news"))
    make_contact(app, family_name="C", topics=("general-news",))
    fr_ngo = make_contact(
        app,
        family_name="D",
        organisation="Robin des Bois",
        organisation_country="FR",
        stakeholder_type="ngo",
        language="fr",
        topics=("pipelines",),
        status="unsubscribed",
    )

    any_topic = ContactFilter(topic_ids=(pipelines, terminals))
    assert matching_ids(app, any_topic) == [de_pipelines, de_terminals, fr_ngo]
    assert matching_ids(app, ContactFilter(topic_ids=(pipelines,), countries=("DE",))) == [
        de_pipelines
    ]
    assert matching_ids(app, ContactFilter(stakeholder_types=(StakeholderType.NGO,))) == [fr_ngo]
    assert matching_ids(app, ContactFilter(languages=("fr",))) == [fr_ngo]
    assert matching_ids(app, ContactFilter(statuses=(ContactStatus.UNSUBSCRIBED,))) == [fr_ngo]
    assert (
        matching_ids(
            app,
            ContactFilter(
                statuses=(ContactStatus.ACTIVE,), stakeholder_types=(StakeholderType.NGO,)
            ),
        )
        == []
    )


def test_sign_up_dates_include_both_ends(app):
    make_contact(app, family_name="Before", created_at=datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    first = make_contact(
        app, family_name="First", created_at=datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    )
    last = make_contact(
        app, family_name="Last", created_at=datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    )
    make_contact(app, family_name="After", created_at=datetime(2026, 4, 1, 0, 0, tzinfo=UTC))

    march = ContactFilter(created_from=date(2026, 3, 1), created_to=date(2026, 3, 31))
    assert matching_ids(app, march) == [first, last]
    assert matching_ids(app, ContactFilter(created_from=date(2026, 4, 2))) == []


@pytest.fixture
def sortable(app):
    """Three contacts that each sort differently by every key."""
    return {
        "berg": make_contact(
            app,
            given_name="Anna",
            family_name="Berg",
            email="z@example.org",
            organisation="Zeta Agency",
            organisation_country="SE",
            status="bounced",
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        ),
        "ozturk": make_contact(
            app,
            given_name="Ömer",
            family_name="Öztürk",
            email="a@example.org",
            organisation="Alpha Works",
            organisation_country="TR",
            status="active",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        "costa": make_contact(
            app,
            given_name="Ines",
            family_name="Costa",
            email="m@example.org",
            organisation="Mu Institute",
            organisation_country="PT",
            status="pending",
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        ),
    }


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["berg", "costa", "ozturk"]),  # "anna berg" < "ines costa" < "omer ozturk"
        ("-name", ["ozturk", "costa", "berg"]),
        ("email", ["ozturk", "costa", "berg"]),
        ("organisation", ["ozturk", "costa", "berg"]),
        ("-organisation", ["berg", "costa", "ozturk"]),
        ("country", ["costa", "berg", "ozturk"]),  # PT, SE, TR
        ("status", ["ozturk", "berg", "costa"]),  # active, bounced, pending
        ("signed_up", ["costa", "berg", "ozturk"]),
        ("-signed_up", ["ozturk", "berg", "costa"]),
    ],
)
def test_every_sort_key_orders_both_ways(app, sortable, sort, expected):
    assert matching_ids(app, ContactFilter(), sort) == [sortable[key] for key in expected]


def test_a_filter_is_described_in_names_not_codes(app):
    contact_filter = ContactFilter(
        topic_ids=[topic_id(app, "jeg-meetings"), topic_id(app, "pipelines")],
        countries=["BE", "FR"],
        languages=["fr"],
        statuses=[ContactStatus.UNSUBSCRIBED],
        stakeholder_types=[StakeholderType.NGO],
    )
    with app.test_request_context():
        words = describe_filter(contact_filter)

    assert words == (
        "topic “JEG meetings and workplans” or “Pipeline safety”; "
        "type Non-governmental organisation; country Belgium or France; language French; "
        "status unsubscribed"
    )
