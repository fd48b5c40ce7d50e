"""The whole self-service journey, with email through a real SMTP server."""

import json

import sqlalchemy as sa

from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, link_in, post_signup, text_body, topic_ids


def _contact(app, email="zoe.mueller@example.org") -> Contact:
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email_key == email))
        db.session.expunge_all()
        return contact


def test_signup_confirm_preferences_unsubscribe_journey(smtp_app, smtp_server):
    handler, _port = smtp_server
    client = smtp_app.test_client()

    response = post_signup(client, smtp_app)
    assert response.status_code == 302
    assert client.get(response.headers["Location"]).status_code == 200
    assert _contact(smtp_app).status is ContactStatus.PENDING

    [confirmation] = handler.wait_for(1)
    assert handler.envelopes[0] == ("jeg@unece.test", ["zoe.mueller@example.org"])
    assert confirmation["To"].addresses[0].display_name == "Zoë Müller"
    assert confirmation.get_content_type() == "multipart/alternative"
    confirm_path = link_in(confirmation, "/confirm/")

    # Opening the link asks; the button on the page confirms.
    assert "Confirm my subscription" in client.get(confirm_path).get_data(as_text=True)
    assert _contact(smtp_app).status is ContactStatus.PENDING
    page = client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    assert page.status_code == 200
    assert "Your subscription is confirmed" in page.get_data(as_text=True)
    contact = _contact(smtp_app)
    assert contact.status is ContactStatus.ACTIVE
    assert contact.confirmed_at is not None
    # Opening the link again changes nothing and still says so.
    again = client.get(confirm_path)
    assert again.status_code == 200
    assert "Your subscription is confirmed" in again.get_data(as_text=True)

    # Signing up again with an active address mails the preferences link instead.
    post_signup(client, smtp_app, email="ZOE.Mueller@Example.org")
    _first, preferences_mail = handler.wait_for(2)
    preferences_path = link_in(preferences_mail, "/preferences/")
    unsubscribe_path = link_in(preferences_mail, "/unsubscribe/")

    page = client.get(preferences_path)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "zoe.mueller@example.org" in body

    form = {
        "csrf_token": csrf_token(client, preferences_path),
        "organisation_name": "Umweltbundesamt",
        "stakeholder_type": "national_authority",
        "organisation_country": "DE",
        "given_name": "Zoé",
        "family_name": "Müller-Lang",
        "language": "fr",
        "topics": [str(i) for i in topic_ids(smtp_app, "oil-terminals")],
    }
    saved = client.post(preferences_path, data=form)
    assert saved.status_code == 302
    contact = _contact(smtp_app)
    with smtp_app.app_context():
        contact = db.session.get(Contact, contact.id)
        assert contact.family_name == "Müller-Lang"
        assert contact.language == "fr"
        assert [topic.slug for topic in contact.topics] == ["oil-terminals"]

    data = client.post(
        preferences_path + "/my-data", data={"csrf_token": csrf_token(client, preferences_path)}
    )
    assert data.status_code == 200
    assert "attachment" in data.headers["Content-Disposition"]
    exported = json.loads(data.get_data(as_text=True))
    assert exported["contact"]["email"] == "zoe.mueller@example.org"
    assert [event["action"] for event in exported["consent_log"]] == [
        "signup",
        "confirm",
        "preferences_changed",
    ]
    assert all(event["wording_version"] for event in exported["consent_log"])

    # The GET only asks; link scanners must not unsubscribe anyone.
    assert client.get(unsubscribe_path).status_code == 200
    assert _contact(smtp_app).status is ContactStatus.ACTIVE
    done = client.post(unsubscribe_path)
    assert done.status_code == 200
    assert _contact(smtp_app).status is ContactStatus.UNSUBSCRIBED
    with smtp_app.app_context():
        actions = [e.action for e in db.session.get(Contact, contact.id).consent_events]
        assert actions[-1] is ConsentAction.UNSUBSCRIBE


def test_confirmation_email_is_in_the_chosen_language(smtp_app, smtp_server):
    handler, _port = smtp_server
    client = smtp_app.test_client()
    post_signup(client, smtp_app, language="ru")
    [message] = handler.wait_for(1)
    assert "Подтвердите" in str(message["Subject"]) or "подтвердите" in str(message["Subject"])
    assert "/confirm/" in text_body(message)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert 'lang="ru"' in html
