"""The demo data generator: realistic, complete, unique and repeatable."""

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    Organisation,
    StakeholderType,
    Topic,
    search_key,
    subscriptions,
)
from jeg_contacts.contacts.services import PRIVACY_NOTICE_VERSION, normalise_organisation_name
from jeg_contacts.countries import unece_member_codes
from jeg_contacts.demo.services import generate_demo_data
from jeg_contacts.demo.world import ascii_words, load_world
from jeg_contacts.extensions import db
from jeg_contacts.text import normalise_email
from tests.conftest import make_app

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
CYRILLIC = re.compile(r"[\u0400-\u04ff]")


@pytest.fixture
def other_app(tmp_path: Path) -> Iterator[Flask]:
    """A second application with its own empty database."""
    folder = tmp_path / "other"
    folder.mkdir()
    other = make_app(folder)
    yield other
    with other.app_context():
        db.engine.dispose()


def generate(app: Flask, count: int, seed: int = 0) -> int:
    with app.app_context():
        created = generate_demo_data(count, seed, now=NOW)
        db.session.commit()
        return created


def people(app: Flask) -> list[tuple]:
    """Everything about each contact that the seed decides, in insertion order."""
    with app.app_context():
        topics_by_contact: dict[int, list[str]] = {}
        for contact_id, slug in db.session.execute(
            sa.select(subscriptions.c.contact_id, Topic.slug)
            .join(Topic, Topic.id == subscriptions.c.topic_id)
            .order_by(subscriptions.c.contact_id, Topic.slug)
        ):
            topics_by_contact.setdefault(contact_id, []).append(slug)
        contacts = db.session.scalars(sa.select(Contact).order_by(Contact.id)).all()
        return [
            (
                contact.salutation,
                contact.given_name,
                contact.family_name,
                contact.job_title,
                contact.email,
                contact.phone,
                contact.country,
                contact.language,
                contact.status,
                contact.created_at,
                contact.confirmed_at,
                contact.organisation.name,
                contact.organisation.stakeholder_type,
                tuple(topics_by_contact[contact.id]),
            )
            for contact in contacts
        ]


def test_generate_creates_the_requested_number_of_contacts(app: Flask) -> None:
    assert generate(app, 200) == 200

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 200
        organisations = db.session.scalar(sa.select(sa.func.count()).select_from(Organisation))
        assert 20 < organisations < 200


def test_every_contact_has_an_organisation_and_one_to_five_topics(app: Flask) -> None:
    generate(app, 200)

    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).where(Contact.organisation_id.is_(None)))
            == 0
        )
        per_contact = Counter(db.session.scalars(sa.select(subscriptions.c.contact_id)))
        assert len(per_contact) == 200
        assert set(per_contact.values()) <= {1, 2, 3, 4, 5}
        assert len(set(per_contact.values())) >= 3  # a mix, not always the same number


def test_the_same_seed_gives_the_same_people(app: Flask, other_app: Flask) -> None:
    generate(app, 150, seed=7)
    generate(other_app, 150, seed=7)

    assert people(app) == people(other_app)


def test_another_seed_gives_other_people(app: Flask, other_app: Flask) -> None:
    generate(app, 150, seed=7)
    generate(other_app, 150, seed=8)

    emails = {person[4] for person in people(app)}
    other_emails = {person[4] for person in people(other_app)}
    assert len(emails & other_emails) < 15


def test_emails_are_unique_valid_and_reserved_for_examples(app: Flask) -> None:
    generate(app, 300)

    with app.app_context():
        rows = db.session.execute(sa.select(Contact.email, Contact.email_key)).all()
        emails = [email for email, _ in rows]
        assert len(set(emails)) == 300
        for email, key in rows:
            assert key == email.casefold()
            assert email.endswith(".example")
            # What the directory's edit form and sign-up accept: demo contacts stay editable.
            assert normalise_email(email) == email


def test_columns_the_orm_would_fill_are_filled(app: Flask) -> None:
    generate(app, 200)

    with app.app_context():
        contacts = db.session.scalars(sa.select(Contact)).all()
        for contact in contacts:
            assert contact.search_name == search_key(f"{contact.given_name} {contact.family_name}")
            assert contact.version == 1
            assert len(contact.link_secret) >= 40
        assert len({contact.link_secret for contact in contacts}) == 200
        for organisation in db.session.scalars(sa.select(Organisation)):
            assert organisation.normalised_name == normalise_organisation_name(organisation.name)


def test_consent_log_matches_each_status(app: Flask) -> None:
    generate(app, 400)

    with app.app_context():
        events: dict[int, list[ConsentEvent]] = {}
        for event in db.session.scalars(sa.select(ConsentEvent).order_by(ConsentEvent.at)):
            events.setdefault(event.contact_id, []).append(event)
        statuses = Counter()
        for contact in db.session.scalars(sa.select(Contact)):
            statuses[contact.status] += 1
            log = events[contact.id]
            actions = [event.action for event in log]
            assert all(event.wording_version == PRIVACY_NOTICE_VERSION for event in log)
            assert all(event.source == "demo data" for event in log)
            assert actions[0] is ConsentAction.SIGNUP
            assert log[0].at == contact.created_at
            if contact.status is ContactStatus.PENDING:
                assert actions == [ConsentAction.SIGNUP]
                assert contact.confirmed_at is None
            else:
                assert actions[1] is ConsentAction.CONFIRM
                assert log[1].at == contact.confirmed_at >= contact.created_at
            if contact.status is ContactStatus.UNSUBSCRIBED:
                assert actions == [
                    ConsentAction.SIGNUP,
                    ConsentAction.CONFIRM,
                    ConsentAction.UNSUBSCRIBE,
                ]
            if contact.status in (ContactStatus.ACTIVE, ContactStatus.BOUNCED):
                assert actions == [ConsentAction.SIGNUP, ConsentAction.CONFIRM]
        assert statuses[ContactStatus.ACTIVE] > 0.7 * 400
        assert all(
            statuses[status] > 0
            for status in (ContactStatus.PENDING, ContactStatus.UNSUBSCRIBED, ContactStatus.BOUNCED)
        )


def test_sign_ups_spread_over_three_years_up_to_now(app: Flask) -> None:
    generate(app, 400)

    with app.app_context():
        created = list(db.session.scalars(sa.select(Contact.created_at)))
        assert max(created) <= NOW
        assert min(created) >= NOW - timedelta(days=3 * 366)
        assert max(created) - min(created) > timedelta(days=2 * 365)
        months = Counter(moment.strftime("%Y-%m") for moment in created)
        assert len(months) > 30


def test_stakeholders_look_like_the_jeg_community(app: Flask) -> None:
    generate(app, 1000)

    with app.app_context():
        contacts = db.session.scalars(sa.select(Contact)).all()
        countries = Counter(contact.country for contact in contacts)
        assert set(countries) <= set(unece_member_codes())
        assert len(countries) > 40
        assert {contact.language for contact in contacts} == {"en", "fr", "ru"}
        french = [c for c in contacts if c.country == "FR"]
        assert Counter(c.language for c in french).most_common(1)[0][0] == "fr"
        russian = [c for c in contacts if c.country == "RU"]
        assert Counter(c.language for c in russian).most_common(1)[0][0] == "ru"
        assert all(CYRILLIC.search(c.given_name) for c in russian)
        assert not any(CYRILLIC.search(c.given_name) for c in contacts if c.country == "DE")

        kinds = Counter(contact.organisation.stakeholder_type for contact in contacts)
        assert set(kinds) == set(StakeholderType)
        commissions = {
            contact.organisation.name
            for contact in contacts
            if contact.organisation.stakeholder_type is StakeholderType.RIVER_BASIN_COMMISSION
        }
        real_names = {facts["name"] for facts in load_world()["river_commissions"]}
        assert commissions
        assert all(any(name.startswith(real) for real in real_names) for name in commissions)


def test_operators_subscribe_to_the_guidance_on_their_business(app: Flask) -> None:
    generate(app, 1000)

    with app.app_context():
        terminal_people = db.session.scalars(
            sa.select(Contact)
            .join(Organisation)
            .where(
                Organisation.stakeholder_type == StakeholderType.OPERATOR,
                Organisation.name.contains("Oil Terminal"),
            )
        ).all()
        assert terminal_people
        with_topic = [
            contact
            for contact in terminal_people
            if "oil-terminals" in {topic.slug for topic in contact.topics}
        ]
        assert len(with_topic) > 0.6 * len(terminal_people)


def test_running_again_adds_people_and_reuses_organisations(app: Flask) -> None:
    generate(app, 150)
    with app.app_context():
        organisations_before = db.session.scalar(
            sa.select(sa.func.count()).select_from(Organisation)
        )

    generate(app, 150)  # the same seed draws the same names and organisations again

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 300
        emails = list(db.session.scalars(sa.select(Contact.email)))
        assert len(set(emails)) == 300
        assert (
            db.session.scalar(sa.select(sa.func.count()).select_from(Organisation))
            == organisations_before
        )


def test_topics_are_seeded_when_there_are_none(app: Flask) -> None:
    with app.app_context():
        db.session.execute(sa.delete(Topic))
        db.session.commit()

    generate(app, 20)

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Topic)) == 10
        assert db.session.scalar(sa.select(sa.func.count()).select_from(subscriptions)) >= 20


def test_archived_topics_get_no_new_subscribers(app: Flask) -> None:
    with app.app_context():
        db.session.execute(sa.update(Topic).where(Topic.slug == "pipelines").values(active=False))
        db.session.commit()

    generate(app, 300)

    with app.app_context():
        slugs = set(
            db.session.scalars(
                sa.select(Topic.slug).join(subscriptions, subscriptions.c.topic_id == Topic.id)
            )
        )
        assert "pipelines" not in slugs
        assert len(slugs) == 9


def test_negative_count_is_refused(app: Flask) -> None:
    with app.app_context(), pytest.raises(ValueError):
        generate_demo_data(-1)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Фёдорова", ("fedorova",)),
        ("Weiß", ("weiss",)),
        ("Bērziņa", ("berzina",)),
        ("İbrahim Yılmaz", ("ibrahim", "yilmaz")),  # noqa: RUF001 (Turkish dotless i)
        ("O'Brien", ("obrien",)),
        ("Məmmədov", ("mammadov",)),
        ("Уладзімір Кавалёў", ("uladzimir", "kavaleu")),
        ("Đorđević", ("dordevic",)),
    ],
)
def test_names_become_plain_ascii_for_addresses(name: str, words: tuple[str, ...]) -> None:
    assert ascii_words(name) == words
