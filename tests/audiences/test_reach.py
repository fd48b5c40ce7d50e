"""Who an audience reaches: only active contacts, whatever its filter says about status."""

from jeg_contacts.audiences.services import (
    audience_filter,
    audience_languages,
    audience_query,
    audience_size,
    audience_topic_ids,
    describe_audience,
)
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact, topic_id


def test_an_audience_reaches_only_active_contacts_even_when_it_asks_for_others(app):
    active = make_contact(app, family_name="Active")
    make_contact(app, family_name="Unsubscribed", status="unsubscribed")
    make_contact(app, family_name="Pending", status="pending")
    criteria = {"status": ["active", "unsubscribed", "pending"]}

    with app.test_request_context():
        assert list(db.session.scalars(audience_query(criteria))) == [active]
        assert audience_size(criteria) == 1
        assert audience_size({}) == 1


def test_an_audience_counts_its_contacts_by_language(app):
    make_contact(app, language="fr")
    make_contact(app, language="fr")
    make_contact(app, language="en", country="KZ")

    with app.test_request_context():
        assert audience_languages({}) == {"en": 1, "fr": 2, "ru": 0}
        assert audience_languages({"country": ["KZ"]}) == {"en": 1, "fr": 0, "ru": 0}


def test_stored_criteria_read_back_as_the_filter_and_its_topics(app):
    pipelines = topic_id(app, "pipelines")

    with app.test_request_context():
        contact_filter = audience_filter({"topic": [str(pipelines), "x"], "country": ["XX"]})
        assert contact_filter.to_args() == {"topic": [str(pipelines)]}
        assert audience_topic_ids({"topic": [str(pipelines)]}) == {pipelines}
        assert audience_topic_ids({}) == set()
        assert audience_filter({}).is_empty


def test_an_audience_is_described_in_words(app):
    with app.test_request_context():
        assert describe_audience({}) == "every active contact"
        assert describe_audience({"country": ["KZ"]}) == "active contacts with country Kazakhstan"
