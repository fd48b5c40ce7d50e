"""Editing, adding and changing the status of one contact, through the back office."""

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus, ErasedAddress
from jeg_contacts.contacts.services import email_hash
from jeg_contacts.directory import services
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, link_in, outbox_messages, topic_ids
from tests.directory.conftest import audit_entries, load_contact, make_contact, topic_id


def contact_form(app: Flask, **changes: object) -> dict[str, object]:
    """A complete, valid contact form body; override any field."""
    form: dict[str, object] = {
        "organisation_name": "Umweltbundesamt",
        "stakeholder_type": "national_authority",
        "organisation_country": "DE",
        "organisation_website": "",
        "salutation": "",
        "given_name": "Ana",
        "family_name": "Silva",
        "job_title": "",
        "email": "ana.silva@example.org",
        "phone": "",
        "country": "",
        "language": "en",
        "topics": [str(topic_id) for topic_id in topic_ids(app, "pipelines")],
        "status": "active",
    }
    form.update(changes)
    return form


def opened_version(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="version" type="hidden" value="(\d+)"', page) or re.search(
        r'type="hidden" name="version" value="(\d+)"', page
    )
    assert match, "no version field"
    return match.group(1)


def post_edit(app, client, contact_id, version=None, **changes):
    url = f"/admin/contacts/{contact_id}/edit"
    body = contact_form(app, **changes)
    body["version"] = version if version is not None else opened_version(client, url)
    body["csrf_token"] = csrf_token(client, url)
    return client.post(url, data=body)


def post_new(app, client, **changes):
    body = contact_form(app, **changes)
    body["csrf_token"] = csrf_token(client, "/admin/contacts/new")
    return client.post("/admin/contacts/new", data=body)


@pytest.fixture
def ana(app) -> int:
    return make_contact(app, given_name="Ana", family_name="Silva", email="ana.silva@example.org")


# --- Editing ------------------------------------------------------------------------------


def test_edit_saves_and_audits_before_and_after(app, editor_client, ana):
    response = post_edit(
        app,
        editor_client,
        ana,
        family_name="Silva Costa",
        job_title="Inspector",
        organisation_name="Ministério do Ambiente",
        organisation_country="PT",
        topics=[str(topic_id(app, "oil-terminals")), str(topic_id(app, "pipelines"))],
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/contacts/{ana}"
    contact = load_contact(app, ana)
    assert contact.family_name == "Silva Costa"
    assert contact.search_name == "ana silva costa"
    assert contact.organisation.name == "Ministério do Ambiente"
    assert contact.version == 2
    [entry] = audit_entries(app, action="contact.updated")
    assert entry.entity_id == ana
    assert entry.actor == "editor@unece.test"
    assert entry.changes == {
        "family_name": ["Silva", "Silva Costa"],
        "job_title": [None, "Inspector"],
        "organisation": ["Umweltbundesamt", "Ministério do Ambiente"],
        "organisation_country": ["DE", "PT"],
        "country": ["DE", "PT"],
        "topics": [["pipelines"], ["oil-terminals", "pipelines"]],
    }
    assert contact.consent_events[-1].action is ConsentAction.PREFERENCES_CHANGED
    assert contact.consent_events[-1].source == "secretariat (editor@unece.test)"
    page = editor_client.get(f"/admin/contacts/{ana}").get_data(as_text=True)
    assert "contact.updated" in page and "Silva Costa" in page


def test_choosing_another_type_for_an_existing_organisation_is_explained(app, editor_client, ana):
    response = post_edit(app, editor_client, ana, stakeholder_type="ngo", job_title="Chief")

    assert response.status_code == 302
    page = editor_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Umweltbundesamt was already recorded as “National authority”" in page
    assert load_contact(app, ana).organisation.stakeholder_type.value == "national_authority"


def test_saving_unchanged_form_changes_nothing(app, editor_client, ana):
    response = post_edit(app, editor_client, ana)

    assert response.status_code == 302
    assert load_contact(app, ana).version == 1
    assert audit_entries(app, action="contact.updated") == []


def test_topic_only_change_still_bumps_the_version(app, editor_client, ana):
    post_edit(app, editor_client, ana, topics=[str(topic_id(app, "general-news"))])

    contact = load_contact(app, ana)
    assert [topic.slug for topic in contact.topics] == ["general-news"]
    assert contact.version == 2


def test_second_editor_with_a_stale_form_is_told_and_saves_nothing(
    app, editor_client, admin_client, ana
):
    url = f"/admin/contacts/{ana}/edit"
    first_version = opened_version(editor_client, url)
    second_version = opened_version(admin_client, url)

    first = post_edit(app, editor_client, ana, first_version, job_title="Set by the first")
    second = post_edit(
        app, admin_client, ana, second_version, job_title="Set by the second", phone="+41 22"
    )

    assert first.status_code == 302
    assert second.status_code == 409
    page = second.get_data(as_text=True)
    assert "Someone else changed this contact meanwhile" in page
    assert "Nothing was saved" in page
    assert 'value="Set by the first"' in page  # the form shows the current values
    assert "Set by the second" in page  # and what they had entered
    assert 'name="version" type="hidden" value="2"' in page
    contact = load_contact(app, ana)
    assert contact.job_title == "Set by the first"
    assert contact.phone is None
    assert [entry.actor for entry in audit_entries(app, action="contact.updated")] == [
        "editor@unece.test"
    ]


def test_concurrent_save_between_check_and_write_is_refused(app, editor_client, ana, monkeypatch):
    apply_profile = services.apply_profile

    def racing_apply_profile(contact, data):
        # Another request commits its save after the version check but before this flush.
        with db.engine.begin() as connection:
            connection.execute(
                sa.update(Contact.__table__)
                .where(Contact.__table__.c.id == contact.id)
                .values(job_title="Saved meanwhile", version=Contact.__table__.c.version + 1)
            )
        apply_profile(contact, data)

    monkeypatch.setattr(services, "apply_profile", racing_apply_profile)
    response = post_edit(app, editor_client, ana, job_title="Mine")

    assert response.status_code == 409
    assert "Someone else changed this contact meanwhile" in response.get_data(as_text=True)
    assert load_contact(app, ana).job_title == "Saved meanwhile"
    assert audit_entries(app, action="contact.updated") == []


def test_email_taken_by_another_contact_is_refused_whatever_its_case(app, editor_client, ana):
    other = make_contact(app, family_name="Other", email="taken@example.org")

    response = post_edit(app, editor_client, ana, email="TAKEN@Example.org")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Another contact already has this email address." in page
    assert f'href="/admin/contacts/{other}"' in page
    assert load_contact(app, ana).email == "ana.silva@example.org"


def test_changing_only_the_case_of_the_address_is_allowed(app, editor_client, ana):
    response = post_edit(app, editor_client, ana, email="Ana.Silva@example.org")

    assert response.status_code == 302
    assert load_contact(app, ana).email == "Ana.Silva@example.org"


def test_email_of_an_erased_contact_cannot_be_reused(app, editor_client, ana):
    with app.app_context():
        db.session.add(ErasedAddress(email_hash=email_hash("gone@example.org")))
        db.session.commit()

    response = post_edit(app, editor_client, ana, email="Gone@example.org")

    assert response.status_code == 400
    assert "had their data erased" in response.get_data(as_text=True)
    assert load_contact(app, ana).email == "ana.silva@example.org"


def test_new_address_revokes_links_sent_to_the_old_one(app, editor_client, ana):
    before = load_contact(app, ana).link_secret

    post_edit(app, editor_client, ana, email="ana.new@example.org")

    contact = load_contact(app, ana)
    assert contact.email_key == "ana.new@example.org"
    assert contact.link_secret != before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("given_name", "Ana\r\nBcc: victim@example.org", "single line"),
        ("family_name", "<script>alert(1)</script>", "cannot contain the characters"),
        ("organisation_name", "Evil <Corp>", "cannot contain the characters"),
        ("email", "not-an-address", "valid email address"),
        ("email", "", "This field is required."),
        ("phone", "call me", "digits"),
        ("organisation_website", "javascript:alert(1)", "https://"),
        ("stakeholder_type", "spaceship", ""),
        ("topics", [], "Choose at least one topic."),
        ("status", "erased", "Choose a status from the list."),
        ("status", "pending", "Choose a status from the list."),
    ],
)
def test_invalid_edit_is_shown_again_with_400_and_saves_nothing(
    app, editor_client, ana, field, value, message
):
    response = post_edit(app, editor_client, ana, **{field: value, "job_title": "Changed"})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert "<script>alert(1)</script>" not in page
    contact = load_contact(app, ana)
    assert contact.job_title is None
    assert contact.version == 1
    assert audit_entries(app, action="contact.updated") == []


def test_archived_topics_survive_an_edit(app, editor_client, ana):
    with app.app_context():
        contact = db.session.get(Contact, ana)
        archived = contact.topics[0]
        archived.active = False
        db.session.commit()

    response = post_edit(app, editor_client, ana, topics=[str(topic_id(app, "general-news"))])

    assert response.status_code == 302
    assert sorted(topic.slug for topic in load_contact(app, ana).topics) == [
        "general-news",
        "pipelines",
    ]


# --- Adding -------------------------------------------------------------------------------


def test_adding_an_active_contact_records_who_added_them_and_why(app, editor_client):
    response = post_new(
        app,
        editor_client,
        email="new.person@example.org",
        status="active",
        basis="Asked us by phone to receive the newsletter.",
    )

    assert response.status_code == 302
    with app.app_context():
        contact_id = db.session.scalar(
            sa.select(Contact.id).where(Contact.email_key == "new.person@example.org")
        )
    contact = load_contact(app, contact_id)
    assert contact.status is ContactStatus.ACTIVE
    assert contact.confirmed_at is not None
    [event] = contact.consent_events
    assert (event.action, event.source, event.wording_version) == (
        ConsentAction.ADDED_BY_STAFF,
        "added by editor@unece.test",
        None,
    )
    assert event.detail == (
        "basis: Asked us by phone to receive the newsletter.; status: active; "
        "topics: pipelines; language: en"
    )
    [entry] = audit_entries(app, action="contact.created")
    assert entry.entity_id == contact_id
    assert entry.changes["email"] == [None, "new.person@example.org"]
    assert entry.changes["basis"] == [None, "Asked us by phone to receive the newsletter."]
    assert outbox_messages(app) == []


def test_adding_a_pending_contact_sends_the_usual_confirmation(app, editor_client, client):
    response = post_new(app, editor_client, email="pending@example.org", status="pending")

    assert response.status_code == 302
    [message] = outbox_messages(app)
    assert message["To"].addresses[0].addr_spec == "pending@example.org"
    confirm_path = link_in(message, "/confirm/")
    confirmed = client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    assert confirmed.status_code == 200
    with app.app_context():
        contact = db.session.scalar(
            sa.select(Contact).where(Contact.email_key == "pending@example.org")
        )
        assert contact.status is ContactStatus.ACTIVE
        assert [event.action for event in contact.consent_events] == [
            ConsentAction.ADDED_BY_STAFF,
            ConsentAction.CONFIRM,
        ]


def test_adding_requires_choosing_active_or_pending(app, editor_client):
    for status in ("", "bounced", "erased"):
        response = post_new(app, editor_client, status=status)
        assert response.status_code == 400
        assert "Choose a status from the list." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_adding_a_known_address_points_to_the_existing_contact(app, editor_client, ana):
    response = post_new(app, editor_client, email="ANA.SILVA@example.org")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Another contact already has this email address." in page
    assert f'href="/admin/contacts/{ana}"' in page
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1
    assert len(audit_entries(app, action="contact.created")) == 1  # Ana's own


def test_adding_an_erased_address_is_refused(app, editor_client):
    with app.app_context():
        db.session.add(ErasedAddress(email_hash=email_hash("gone@example.org")))
        db.session.commit()

    response = post_new(app, editor_client, email="gone@example.org")

    assert response.status_code == 400
    assert "had their data erased" in response.get_data(as_text=True)
    assert outbox_messages(app) == []


# --- Status -------------------------------------------------------------------------------


def change_status(client, contact_id, status, version=None):
    url = f"/admin/contacts/{contact_id}"
    token = csrf_token(client, url)
    version = version or opened_version(client, url)
    return client.post(
        f"/admin/contacts/{contact_id}/status",
        data={"csrf_token": token, "status": status, "version": version},
    )


def test_unsubscribing_writes_consent_and_audit(app, editor_client, ana):
    response = change_status(editor_client, ana, "unsubscribed")

    assert response.status_code == 302
    contact = load_contact(app, ana)
    assert contact.status is ContactStatus.UNSUBSCRIBED
    assert contact.consent_events[-1].action is ConsentAction.UNSUBSCRIBE
    assert contact.consent_events[-1].source == "secretariat (editor@unece.test)"
    [entry] = audit_entries(app, action="contact.status_changed")
    assert (entry.entity_id, entry.changes) == (ana, {"status": ["active", "unsubscribed"]})


def test_activating_a_pending_contact_confirms_them(app, editor_client):
    pending = make_contact(app, status="pending")

    change_status(editor_client, pending, "active")

    contact = load_contact(app, pending)
    assert contact.status is ContactStatus.ACTIVE
    assert contact.consent_events[-1].action is ConsentAction.CONFIRM


def test_bounce_is_audited_but_not_a_consent_event(app, editor_client, ana):
    events_before = len(load_contact(app, ana).consent_events)

    change_status(editor_client, ana, "bounced")

    contact = load_contact(app, ana)
    assert contact.status is ContactStatus.BOUNCED
    assert len(contact.consent_events) == events_before
    assert len(audit_entries(app, action="contact.status_changed")) == 1


def test_status_change_from_a_stale_page_is_refused(app, editor_client, ana):
    post_edit(app, editor_client, ana, job_title="Changed first")

    response = change_status(editor_client, ana, "bounced", version="1")

    assert response.status_code == 302
    assert load_contact(app, ana).status is ContactStatus.ACTIVE
    page = editor_client.get(f"/admin/contacts/{ana}").get_data(as_text=True)
    assert "Someone else changed this contact meanwhile" in page


def test_status_cannot_be_set_to_pending_or_erased_by_hand(app, editor_client, ana):
    for status in ("pending", "erased", "nonsense"):
        change_status(editor_client, ana, status)
    assert load_contact(app, ana).status is ContactStatus.ACTIVE
    assert audit_entries(app, action="contact.status_changed") == []


# --- Access -------------------------------------------------------------------------------


def test_viewer_cannot_open_or_post_any_change(app, viewer_client, ana):
    audited_before = len(audit_entries(app))
    token = csrf_token(viewer_client, "/admin/contacts")
    for method, url in (
        ("GET", f"/admin/contacts/{ana}/edit"),
        ("POST", f"/admin/contacts/{ana}/edit"),
        ("GET", "/admin/contacts/new"),
        ("POST", "/admin/contacts/new"),
        ("POST", f"/admin/contacts/{ana}/status"),
        ("GET", "/admin/contacts/bulk"),
        ("POST", "/admin/contacts/bulk"),
    ):
        data = contact_form(app, csrf_token=token, status="bounced") if method == "POST" else None
        response = viewer_client.open(url, method=method, data=data)
        assert response.status_code == 403, f"{method} {url}"
    contact = load_contact(app, ana)
    assert (contact.status, contact.version) == (ContactStatus.ACTIVE, 1)
    assert len(audit_entries(app)) == audited_before


# --- An address taken while saving ---------------------------------------------------------


@pytest.mark.parametrize("service", ["add_contact", "update_contact"])
def test_address_taken_between_the_check_and_the_commit_is_refused(
    app, editor_client, ana, monkeypatch, service
):
    """Another request saves a contact with the address after the service checked it: the
    unique index refuses the commit and the form comes back with the reason."""
    checked = getattr(services, service)

    def racing(*args, **kwargs):
        result = checked(*args, **kwargs)
        db.session.add(
            Contact(
                given_name="Racing",
                family_name="Request",
                email="taken@example.org",
                email_key="taken@example.org",
                link_secret="x",
            )
        )
        return result

    monkeypatch.setattr(services, service, racing)
    if service == "add_contact":
        response = post_new(
            app, editor_client, email="taken@example.org", basis="Asked us to add them."
        )
    else:
        response = post_edit(app, editor_client, ana, email="taken@example.org")

    assert response.status_code == 400
    assert "Another contact already has this email address." in response.get_data(as_text=True)
    with app.app_context():
        emails = db.session.scalars(sa.select(Contact.email)).all()
    assert emails == ["ana.silva@example.org"]
