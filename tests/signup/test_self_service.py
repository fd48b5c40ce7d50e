"""Preferences and one-click unsubscribe (the data download and erasure from the same page:
tests/privacy/test_self_service.py)."""

from jeg_contacts.contacts.models import ConsentAction, ContactStatus
from tests.conftest import csrf_token, only_contact, topic_ids


def _preferences(app, client, subscriber_token, **overrides):
    form = {
        "csrf_token": csrf_token(client, f"/preferences/{subscriber_token}"),
        "organisation_name": "International Commission for the Protection of the Danube River",
        "stakeholder_type": "river_basin_commission",
        "organisation_country": "AT",
        "given_name": "Zoë",
        "family_name": "Müller",
        "language": "en",
        "topics": [str(i) for i in topic_ids(app, "tailings-management-facilities")],
    }
    form.update(overrides)
    return client.post(f"/preferences/{subscriber_token}", data=form)


def test_preferences_page_is_prefilled(app, client, subscriber_token):
    page = client.get(f"/preferences/{subscriber_token}").get_data(as_text=True)
    assert 'value="Umweltbundesamt"' in page
    assert 'value="Zoë"' in page
    [pipelines] = topic_ids(app, "pipelines")
    assert f'value="{pipelines}" checked' in page


def test_changing_preferences_saves_and_logs_consent(app, client, subscriber_token):
    response = _preferences(app, client, subscriber_token, language="ru")
    assert response.status_code == 302
    contact = only_contact(app)
    assert contact.organisation_id is not None
    assert contact.language == "ru"
    assert [t.slug for t in contact.topics] == ["tailings-management-facilities"]
    assert contact.consent_events[-1].action is ConsentAction.PREFERENCES_CHANGED
    assert "tailings-management-facilities" in contact.consent_events[-1].detail
    # The page now speaks the contact's new language.
    assert 'lang="ru"' in client.get(f"/preferences/{subscriber_token}").get_data(as_text=True)


def test_invalid_preferences_change_nothing(app, client, subscriber_token):
    before = only_contact(app)
    response = _preferences(app, client, subscriber_token, topics=[], given_name="Bad\r\nName")
    assert response.status_code == 400
    after = only_contact(app)
    assert after.given_name == before.given_name
    assert [t.slug for t in after.topics] == [t.slug for t in before.topics]
    assert len(after.consent_events) == len(before.consent_events)


def test_saving_topics_after_unsubscribing_subscribes_again(app, client, subscriber_token):
    client.post(f"/unsubscribe/{subscriber_token}")
    assert only_contact(app).status is ContactStatus.UNSUBSCRIBED
    assert _preferences(app, client, subscriber_token).status_code == 302
    contact = only_contact(app)
    assert contact.status is ContactStatus.ACTIVE
    assert contact.consent_events[-1].action is ConsentAction.RESUBSCRIBE


def test_one_click_unsubscribe_urlencoded_without_cookies(app, subscriber_token):
    bare = app.test_client(use_cookies=False)
    response = bare.post(
        f"/unsubscribe/{subscriber_token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    contact = only_contact(app)
    assert contact.status is ContactStatus.UNSUBSCRIBED
    assert contact.consent_events[-1].source.startswith("one-click")


def test_one_click_unsubscribe_multipart_without_cookies(app, subscriber_token):
    bare = app.test_client(use_cookies=False)
    response = bare.post(
        f"/unsubscribe/{subscriber_token}",
        data={"List-Unsubscribe": "One-Click"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert only_contact(app).status is ContactStatus.UNSUBSCRIBED


def test_unsubscribing_twice_logs_once(app, client, subscriber_token):
    client.post(f"/unsubscribe/{subscriber_token}")
    client.post(f"/unsubscribe/{subscriber_token}")
    actions = [e.action for e in only_contact(app).consent_events]
    assert actions.count(ConsentAction.UNSUBSCRIBE) == 1
