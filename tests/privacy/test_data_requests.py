"""Personal-data requests handled by an administrator: a copy of everything, and erasure."""

import json

import pytest

from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.extensions import db
from jeg_contacts.privacy.services import contact_data_export
from tests.conftest import audit_entries, csrf_token
from tests.directory.conftest import load_contact, make_contact
from tests.imports.conftest import (
    contacts_by_email,
    csv_bytes,
    row,
    run_import,
    write,
)


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_administrators_handle_data_requests(app, request, role):
    contact_id = make_contact(app)
    client = request.getfixturevalue(f"{role}_client")

    assert client.get(f"/admin/contacts/{contact_id}/personal-data.json").status_code == 403
    assert client.get(f"/admin/contacts/{contact_id}/erase").status_code == 403
    assert "Personal-data request" not in client.get(f"/admin/contacts/{contact_id}").get_data(
        as_text=True
    )


def test_administrators_download_the_self_service_document(app, admin_client):
    contact_id = make_contact(app, given_name="Zoë", email="zoe@example.org")
    page = admin_client.get(f"/admin/contacts/{contact_id}").get_data(as_text=True)
    assert "Download everything stored (JSON)" in page

    response = admin_client.get(f"/admin/contacts/{contact_id}/personal-data.json")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert f"jeg-contact-{contact_id}-personal-data.json" in response.headers["Content-Disposition"]
    document = response.get_json()
    with app.app_context():
        expected = contact_data_export(
            db.session.get(
                __import__("jeg_contacts.contacts.models", fromlist=["Contact"]).Contact, contact_id
            )
        )
    assert {key: value for key, value in document.items() if key != "exported_at"} == {
        key: value
        for key, value in json.loads(json.dumps(expected)).items()
        if key != "exported_at"
    }
    [entry] = audit_entries(app, "contact.data_exported")
    assert (entry.entity_id, entry.actor) == (contact_id, "admin@unece.test")


def test_erasure_asks_for_confirmation_first(app, admin_client):
    contact_id = make_contact(app, email="zoe@example.org")
    url = f"/admin/contacts/{contact_id}/erase"
    token = csrf_token(admin_client, url)

    response = admin_client.post(url, data={"csrf_token": token})

    assert response.status_code == 400
    assert "Tick the box to confirm the request." in response.get_data(as_text=True)
    assert load_contact(app, contact_id).status is ContactStatus.ACTIVE


def test_erasure_does_what_self_service_erasure_does_and_is_audited(app, admin_client, tmp_path):
    contact_id = make_contact(app, given_name="Zoë", email="zoe@example.org")
    url = f"/admin/contacts/{contact_id}/erase"
    token = csrf_token(admin_client, url)

    response = admin_client.post(url, data={"csrf_token": token, "confirm": "y"})

    assert response.status_code == 302
    contact = load_contact(app, contact_id)
    assert contact.status is ContactStatus.ERASED
    assert (contact.email, contact.given_name, contact.organisation, contact.topics) == (
        None,
        "",
        None,
        [],
    )
    assert contact.consent_events[-1].source == (
        "secretariat (admin@unece.test), at the contact's request"
    )
    [entry] = audit_entries(app, "contact.erased")
    assert entry.entity_id == contact_id
    assert "zoe" not in entry.summary.lower()
    page = admin_client.get(f"/admin/contacts/{contact_id}").get_data(as_text=True)
    assert "Erase their data" not in page

    summary = run_import(app, write(tmp_path, "list.csv", csv_bytes([row("ZOE@example.org")])))

    assert summary.rows == 1 and summary.counts["reject"] == 1
    assert "zoe@example.org" not in contacts_by_email(app)


def test_erasing_an_erased_contact_just_says_so(app, admin_client):
    contact_id = make_contact(app, status="erased")

    response = admin_client.get(f"/admin/contacts/{contact_id}/erase", follow_redirects=True)

    assert "This contact&#39;s data was already erased." in response.get_data(as_text=True)


def test_unknown_contacts_are_not_found(app, admin_client):
    assert admin_client.get("/admin/contacts/999/personal-data.json").status_code == 404
    assert admin_client.get("/admin/contacts/99999999999/erase").status_code == 404
