"""The department, the example field of docs/architecture.md ("Adding a contact field"): added
with a column, a rule, a line in DETAIL_FIELDS, the forms and templates, and a migration, it
goes through every path that reads or writes a contact."""

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.contacts.services import audit_snapshot
from jeg_contacts.extensions import db
from jeg_contacts.imports.mapping import suggest_mapping
from jeg_contacts.imports.services import Outcome
from jeg_contacts.privacy.services import contact_data_export, erase_contact
from tests.conftest import (
    audit_entries,
    csrf_token,
    link_in,
    outbox_messages,
    post_signup,
    signup_form,
)
from tests.directory.conftest import load_contact, make_contact
from tests.directory.test_contact_changes import post_edit, post_new
from tests.exports.test_export_formats import csv_rows, export_bytes
from tests.imports.conftest import BASIS, HEADER, csv_bytes, row, run_import, write

UNIT = "Industrial Safety Unit"


def the_contact(app) -> Contact:
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        db.session.expunge(contact)
        return contact


# --- Sign-up and the preference centre -----------------------------------------------------


def test_sign_up_stores_the_department_and_shows_it_to_confirm(app, client):
    response = post_signup(client, app, department=f"  {UNIT} ")

    assert response.status_code == 302
    assert the_contact(app).department == UNIT
    confirm_path = link_in(outbox_messages(app)[-1], "/confirm/")
    assert UNIT in client.get(confirm_path).get_data(as_text=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 201, "Use at most 200 characters."),
        ("Unit\nB", "This field must be a single line of text."),
    ],
)
def test_sign_up_refuses_a_department_the_rule_refuses(app, client, value, message):
    response = post_signup(client, app, department=value)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_the_preference_centre_shows_and_changes_the_department(app, client):
    post_signup(client, app, department=UNIT)
    contact = the_contact(app)
    with app.app_context():
        url = f"/preferences/{manage_token(db.session.get(Contact, contact.id))}"
    assert f'value="{UNIT}"' in client.get(url).get_data(as_text=True)

    form = signup_form(app, department="Water Unit")
    del form["email"], form["consent"]
    response = client.post(url, data={**form, "csrf_token": csrf_token(client, url)})

    assert response.status_code == 302
    assert the_contact(app).department == "Water Unit"


# --- The directory ---------------------------------------------------------------------------


def test_staff_add_a_contact_with_a_department(app, editor_client):
    response = post_new(app, editor_client, department=UNIT, status="pending")

    assert response.status_code == 302
    contact = the_contact(app)
    assert contact.department == UNIT
    [created] = audit_entries(app, "contact.created")
    assert created.changes["department"] == [None, UNIT]


def test_staff_edit_the_department_and_the_audit_log_records_it(app, editor_client):
    contact_id = make_contact(app, email="ana.silva@example.org")
    form = editor_client.get(f"/admin/contacts/{contact_id}/edit").get_data(as_text=True)
    assert 'name="department"' in form

    response = post_edit(app, editor_client, contact_id, department=UNIT)

    assert response.status_code == 302
    assert load_contact(app, contact_id).department == UNIT
    [entry] = audit_entries(app, "contact.updated")
    assert entry.changes == {"department": [None, UNIT]}
    page = editor_client.get(f"/admin/contacts/{contact_id}").get_data(as_text=True)
    assert "<dt>Department</dt><dd>Industrial Safety Unit</dd>" in page


# --- Imports and exports ---------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Department", "Unit", "Département", "Отдел"])
def test_an_import_recognises_the_department_column_in_three_languages(header):
    assert suggest_mapping(["Email", header]) == ["email", "department"]


def test_an_import_adds_and_updates_departments_with_the_same_rule(app, tmp_path):
    rows = [
        [*row("ana@example.org"), UNIT],
        [*row("olga@example.org", "Olga", "Ivanova"), "x" * 201],
    ]
    path = write(tmp_path, "list.csv", csv_bytes(rows, header=[*HEADER, "Département"]))

    summary = run_import(app, path, status=ContactStatus.ACTIVE, basis=BASIS)

    assert summary.count(Outcome.CREATE) == 1
    [rejected] = summary.examples[Outcome.REJECT]
    assert rejected.detail == "Department: Use at most 200 characters."
    assert the_contact(app).department == UNIT

    path = write(
        tmp_path,
        "update.csv",
        csv_bytes([[*row("ana@example.org"), "Water Unit"]], header=[*HEADER, "Unit"]),
    )
    summary = run_import(app, path, update_existing=True)

    [updated] = summary.examples[Outcome.UPDATE]
    assert updated.detail == "Changes department"
    assert the_contact(app).department == "Water Unit"
    [entry] = audit_entries(app, "contact.updated")
    assert entry.changes == {"department": [UNIT, "Water Unit"]}


def test_an_export_has_a_department_column_an_import_reads_back(app):
    contact_id = make_contact(app, email="ana@example.org")
    with app.app_context():
        db.session.get(Contact, contact_id).department = UNIT
        db.session.commit()

    [by_default] = csv_rows(export_bytes(app, "csv"))
    [exported] = csv_rows(export_bytes(app, "csv", columns=["email", "department"]))

    assert "Department" not in by_default

    assert exported["Department"] == UNIT
    assert suggest_mapping(list(exported))[list(exported).index("Department")] == "department"


# --- Audit, personal data and erasure -------------------------------------------------------


def test_audit_snapshots_the_download_and_erasure_include_the_department(app):
    contact_id = make_contact(app)
    with app.test_request_context():
        contact = db.session.get(Contact, contact_id)
        contact.department = UNIT

        assert audit_snapshot(contact)["department"] == UNIT
        assert contact_data_export(contact)["contact"]["department"] == UNIT

        erase_contact(contact, "test")
        db.session.commit()

        assert db.session.get(Contact, contact_id).department is None
