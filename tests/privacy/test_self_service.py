"""The data download and erasure a contact starts from their own preferences page."""

import json

import sqlalchemy as sa

from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus, ErasedAddress
from jeg_contacts.contacts.services import email_hash, is_erased_address
from jeg_contacts.extensions import db
from jeg_contacts.privacy.services import contact_data_export
from tests.conftest import csrf_token, link_in, only_contact, outbox_messages, post_signup


def test_download_requires_csrf_and_returns_everything(app, client, subscriber_token):
    assert client.post(f"/preferences/{subscriber_token}/my-data").status_code == 400
    response = client.post(
        f"/preferences/{subscriber_token}/my-data",
        data={"csrf_token": csrf_token(client, f"/preferences/{subscriber_token}")},
    )
    data = json.loads(response.get_data(as_text=True))
    assert data["contact"]["given_name"] == "Zoë"
    assert data["organisation"]["name"] == "Umweltbundesamt"
    assert {t["slug"] for t in data["topics"]} == {"pipelines", "response-exercises"}
    assert [e["action"] for e in data["consent_log"]] == ["signup", "confirm"]


def test_erase_asks_first_then_removes_personal_data_and_revokes_links(
    app, client, subscriber_token
):
    page = client.get(f"/preferences/{subscriber_token}/erase")
    assert page.status_code == 200
    assert only_contact(app).status is ContactStatus.ACTIVE

    response = client.post(
        f"/preferences/{subscriber_token}/erase",
        data={"csrf_token": csrf_token(client, f"/preferences/{subscriber_token}/erase")},
    )
    assert response.status_code == 200
    contact = only_contact(app)
    assert contact.status is ContactStatus.ERASED
    assert (contact.email, contact.email_key, contact.given_name, contact.family_name) == (
        None,
        None,
        "",
        "",
    )
    assert contact.phone is None and contact.job_title is None
    assert contact.organisation_id is None
    assert contact.topics == []
    assert contact.consent_events[-1].action is ConsentAction.ERASE
    with app.app_context():
        assert is_erased_address("Zoe.Mueller@example.org")
        [kept] = db.session.scalars(sa.select(ErasedAddress)).all()
        assert kept.email_hash == email_hash("zoe.mueller@example.org")
        assert "zoe" not in kept.email_hash
    assert client.get(f"/preferences/{subscriber_token}").status_code == 400
    assert client.post(f"/unsubscribe/{subscriber_token}").status_code == 400


def test_erased_person_can_sign_up_again_themselves(app, client, subscriber_token):
    client.post(
        f"/preferences/{subscriber_token}/erase",
        data={"csrf_token": csrf_token(client, f"/preferences/{subscriber_token}/erase")},
    )
    assert post_signup(client, app).status_code == 302
    with app.app_context():
        statuses = sorted(c.status.value for c in db.session.scalars(sa.select(Contact)))
    assert statuses == ["erased", "pending"]


def test_download_names_topics_in_the_contacts_language(app, client):
    post_signup(client, app, language="fr")
    confirm_path = link_in(outbox_messages(app)[-1], "/confirm/")
    client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        data = contact_data_export(contact)
        expected = {topic.slug: topic.label_fr for topic in contact.topics}
    assert {topic["slug"]: topic["label"] for topic in data["topics"]} == expected
    assert "Sécurité des pipelines" in expected.values()  # French, not "Pipeline safety"
