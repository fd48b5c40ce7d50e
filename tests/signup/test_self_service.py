"""Preferences and one-click unsubscribe (the data download and erasure from the same page:
tests/privacy/test_self_service.py)."""

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, link_in, outbox_messages, post_signup, topic_ids


@pytest.fixture
def token(app, client) -> str:
    """An active subscriber's preference/unsubscribe token."""
    post_signup(client, app)
    confirm_path = link_in(outbox_messages(app)[-1], "/confirm/")
    client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    with app.app_context():
        return manage_token(db.session.scalar(sa.select(Contact)))


def _contact(app) -> Contact:
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        _ = contact.topics, contact.consent_events
        db.session.expunge_all()
        return contact


def _preferences(app, client, token, **overrides):
    form = {
        "csrf_token": csrf_token(client, f"/preferences/{token}"),
        "organisation_name": "International Commission for the Protection of the Danube River",
        "stakeholder_type": "river_basin_commission",
        "organisation_country": "AT",
        "given_name": "Zoë",
        "family_name": "Müller",
        "language": "en",
        "topics": [str(i) for i in topic_ids(app, "tailings-management-facilities")],
    }
    form.update(overrides)
    return client.post(f"/preferences/{token}", data=form)


def test_preferences_page_is_prefilled(app, client, token):
    page = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert 'value="Umweltbundesamt"' in page
    assert 'value="Zoë"' in page
    [pipelines] = topic_ids(app, "pipelines")
    assert f'value="{pipelines}" checked' in page


def test_changing_preferences_saves_and_logs_consent(app, client, token):
    response = _preferences(app, client, token, language="ru")
    assert response.status_code == 302
    contact = _contact(app)
    assert contact.organisation_id is not None
    assert contact.language == "ru"
    assert [t.slug for t in contact.topics] == ["tailings-management-facilities"]
    assert contact.consent_events[-1].action is ConsentAction.PREFERENCES_CHANGED
    assert "tailings-management-facilities" in contact.consent_events[-1].detail
    # The page now speaks the contact's new language.
    assert 'lang="ru"' in client.get(f"/preferences/{token}").get_data(as_text=True)


def test_invalid_preferences_change_nothing(app, client, token):
    before = _contact(app)
    response = _preferences(app, client, token, topics=[], given_name="Bad\r\nName")
    assert response.status_code == 400
    after = _contact(app)
    assert after.given_name == before.given_name
    assert [t.slug for t in after.topics] == [t.slug for t in before.topics]
    assert len(after.consent_events) == len(before.consent_events)


def test_saving_topics_after_unsubscribing_subscribes_again(app, client, token):
    client.post(f"/unsubscribe/{token}")
    assert _contact(app).status is ContactStatus.UNSUBSCRIBED
    assert _preferences(app, client, token).status_code == 302
    contact = _contact(app)
    assert contact.status is ContactStatus.ACTIVE
    assert contact.consent_events[-1].action is ConsentAction.RESUBSCRIBE


def test_one_click_unsubscribe_urlencoded_without_cookies(app, token):
    bare = app.test_client(use_cookies=False)
    response = bare.post(
        f"/unsubscribe/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    contact = _contact(app)
    assert contact.status is ContactStatus.UNSUBSCRIBED
    assert contact.consent_events[-1].source.startswith("one-click")


def test_one_click_unsubscribe_multipart_without_cookies(app, token):
    bare = app.test_client(use_cookies=False)
    response = bare.post(
        f"/unsubscribe/{token}",
        data={"List-Unsubscribe": "One-Click"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert _contact(app).status is ContactStatus.UNSUBSCRIBED


def test_unsubscribing_twice_logs_once(app, client, token):
    client.post(f"/unsubscribe/{token}")
    client.post(f"/unsubscribe/{token}")
    actions = [e.action for e in _contact(app).consent_events]
    assert actions.count(ConsentAction.UNSUBSCRIBE) == 1
