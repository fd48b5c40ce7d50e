"""Erasure scrubs what the audit log and mail servers' replies say of the person, whichever way
it is asked for, and leaves the history's shape (what changed, when, by whom) in place."""

import json
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.audit.services import ERASED
from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from jeg_contacts.mailing.models import Announcement, Delivery, DeliveryStatus
from jeg_contacts.privacy.services import erase_contact
from tests.conftest import csrf_token, link_in, outbox_messages, post_signup, topic_ids
from tests.directory.conftest import load_contact, make_contact
from tests.directory.test_contact_changes import opened_version, post_edit

SIGNED_UP_AS = "zoe.mueller@example.org"
FIRST_ADDRESS = "zoe.lindqvist@example.org"
LAST_ADDRESS = "Z.Lindqvist@example.org"

# Everything the person ever told us, lower-cased: none of it may survive erasure in the log.
PERSONAL_VALUES = [
    "zoë",
    "zoé",
    "müller",
    "lindqvist",
    "head of industrial safety",
    "dam safety inspector",
    "+49 340 2103 0",
    "+46 8 555 0101",
    "+46 8 555 0199",
    SIGNED_UP_AS,
    FIRST_ADDRESS.lower(),
    LAST_ADDRESS.lower(),
]


def serialised_log(app: Flask) -> dict[int, str]:
    """Every audit row, every column, as text (non-ASCII kept, so "Zoë" is searchable)."""
    with app.app_context():
        rows = db.session.execute(sa.select(AuditEntry.__table__)).mappings().all()
        return {
            row["id"]: json.dumps(dict(row), default=str, ensure_ascii=False).lower()
            for row in rows
        }


def personal_values_in(log: dict[int, str]) -> set[str]:
    return {value for value in PERSONAL_VALUES for text in log.values() if value in text}


def entries_about(app: Flask, contact_id: int) -> list[AuditEntry]:
    with app.app_context():
        entries = list(
            db.session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.entity_type == "contact", AuditEntry.entity_id == contact_id)
                .order_by(AuditEntry.id)
            )
        )
        db.session.expunge_all()
        return entries


def shape(entry: AuditEntry) -> tuple:
    """What erasure must keep of an entry: when, who, what, and which fields changed."""
    return (entry.id, entry.at, entry.actor, entry.action, sorted(entry.changes or {}))


def change_status(app: Flask, client: FlaskClient, contact_id: int, status: str) -> None:
    version = opened_version(client, f"/admin/contacts/{contact_id}/edit")
    token = csrf_token(client, f"/admin/contacts/{contact_id}")
    response = client.post(
        f"/admin/contacts/{contact_id}/status",
        data={"csrf_token": token, "version": version, "status": status},
    )
    assert response.status_code == 302


@pytest.fixture
def history(app, client, editor_client, viewer_client) -> int:
    """A self-service subscriber whose details the secretariat edited, searched for by address,
    changed in bulk and exported: the audit log quotes them in all these places."""
    post_signup(client, app)
    confirm_path = link_in(outbox_messages(app)[-1], "/confirm/")
    client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    with app.app_context():
        contact_id = db.session.scalar(sa.select(Contact.id).where(Contact.email == SIGNED_UP_AS))

    edit = {
        "organisation_name": "Swedish Civil Contingencies Agency",
        "organisation_country": "SE",
        "given_name": "Zoë",
        "family_name": "Lindqvist",
        "job_title": "Dam safety inspector",
        "email": FIRST_ADDRESS,
        "phone": "+46 8 555 0101",
    }
    assert post_edit(app, editor_client, contact_id, **edit).status_code == 302
    change_status(app, editor_client, contact_id, "unsubscribed")
    edit |= {"given_name": "Zoé", "email": LAST_ADDRESS, "phone": "+46 8 555 0199"}
    assert post_edit(app, editor_client, contact_id, **edit).status_code == 302

    query = f"q={quote(LAST_ADDRESS)}"
    [terminals] = topic_ids(app, "oil-terminals")
    bulk = editor_client.post(
        f"/admin/contacts/bulk?{query}",
        data={
            "csrf_token": csrf_token(editor_client, f"/admin/contacts/bulk?{query}"),
            "action": "add_topic",
            "topic_id": str(terminals),
            "confirmed_count": "1",
        },
    )
    assert bulk.status_code == 302
    assert viewer_client.get(f"/admin/exports/download?format=csv&{query}").status_code == 200
    return contact_id


def erase_by_self_service(app: Flask, client: FlaskClient, contact_id: int) -> None:
    with app.app_context():
        token = manage_token(db.session.get(Contact, contact_id))
    url = f"/preferences/{token}/erase"
    assert client.post(url, data={"csrf_token": csrf_token(client, url)}).status_code == 200


def erase_by_staff(app: Flask, client: FlaskClient, contact_id: int) -> None:
    url = f"/admin/contacts/{contact_id}/erase"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "confirm": "y"})
    assert response.status_code == 302


@pytest.mark.parametrize("erase", [erase_by_self_service, erase_by_staff])
def test_erasure_scrubs_the_audit_log_and_keeps_its_history(
    app, client, admin_client, history, erase
):
    bystander = make_contact(
        app, given_name="Olga", family_name="Petrova", email="olga.petrova@example.org"
    )
    before = entries_about(app, history)
    log_before = serialised_log(app)
    # Otherwise the test could pass without scrubbing anything.
    assert personal_values_in(log_before) == set(PERSONAL_VALUES)
    assert [entry.action for entry in before] == [
        "contact.updated",
        "contact.status_changed",
        "contact.updated",
        "contact.topics_changed",
    ]

    erase(app, client if erase is erase_by_self_service else admin_client, history)

    assert load_contact(app, history).status is ContactStatus.ERASED
    log_after = serialised_log(app)
    assert personal_values_in(log_after) == set()
    # The organisation they worked for is not quoted next to their record either.
    after = entries_about(app, history)
    assert not any("swedish civil" in log_after[entry.id] for entry in after)
    # Same entries, same times, actors, actions and changed fields.
    assert [shape(entry) for entry in after[: len(before)]] == [shape(e) for e in before]
    first_edit, status_change, second_edit, bulk_topic = after[: len(before)]
    assert first_edit.summary == f"Edited {ERASED}"
    assert first_edit.changes["phone"] == [ERASED, ERASED]
    assert first_edit.changes["job_title"] == [ERASED, ERASED]
    assert first_edit.changes["organisation"] == [ERASED, ERASED]
    assert status_change.summary == f"Status of {ERASED}: active → unsubscribed"
    assert status_change.changes == {"status": ["active", "unsubscribed"]}
    assert second_edit.changes["status"] == ["unsubscribed", "active"]
    assert second_edit.changes["email"] == [ERASED, ERASED]
    assert bulk_topic.changes == before[3].changes  # topics are kept, like the consent log
    # Entries that only quoted their address in a filter keep the filter's shape.
    with app.app_context():
        export = db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "contacts.exported")
        )
        bulk = db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "contact.bulk_action")
        )
        assert export.changes["criteria"]["q"] == [ERASED]
        assert export.changes["filter"] == f"search “{ERASED}”"
        assert bulk.changes["selection"] == f"search “{ERASED}”"
    # Nobody else's entries change.
    assert {
        entry_id: text
        for entry_id, text in log_after.items()
        if entry_id in {entry.id for entry in entries_about(app, bystander)}
    } == {entry.id: log_before[entry.id] for entry in entries_about(app, bystander)}


def test_staff_erasure_is_audited_without_personal_data(app, admin_client, history):
    erase_by_staff(app, admin_client, history)

    [erased] = [e for e in entries_about(app, history) if e.action == "contact.erased"]
    assert erased.summary == "Erased at the contact's request (personal-data request)"
    assert personal_values_in(serialised_log(app)) == set()


def test_short_names_are_blanked_as_words_not_as_letters(app, editor_client):
    contact_id = make_contact(app, given_name="Li", family_name="Wu", email="li.wu@example.org")
    post_edit(
        app, editor_client, contact_id, given_name="Li", family_name="Wu", email="li@example.org"
    )
    with app.test_request_context():
        erase_contact(db.session.get(Contact, contact_id), "test")
        db.session.commit()

    summaries = [entry.summary for entry in entries_about(app, contact_id)]
    assert summaries == [f"Added {ERASED} as active", f"Edited {ERASED}"]


def test_an_old_address_now_someone_elses_stays_in_their_entries(app, editor_client):
    erased_id = make_contact(app, email="desk@example.org")
    post_edit(app, editor_client, erased_id, email="ana.silva@example.org")
    successor_id = make_contact(app, given_name="Olga", email="desk@example.org")
    with app.test_request_context():
        erase_contact(db.session.get(Contact, erased_id), "test")
        db.session.commit()

    [erased_edit] = [e for e in entries_about(app, erased_id) if e.action == "contact.updated"]
    [successor_added] = entries_about(app, successor_id)
    assert erased_edit.changes["email"] == [ERASED, ERASED]
    assert successor_added.changes["email"] == [None, "desk@example.org"]


def test_erasure_blanks_the_address_in_mail_server_replies(app):
    erased_id = make_contact(app, email="ana.silva@example.org")
    other_id = make_contact(app, email="olga.petrova@example.org")
    with app.app_context():
        announcement = Announcement(subject_en="Exercise", body_en="Dates.")
        db.session.add(announcement)
        db.session.flush()
        for contact_id, address in ((erased_id, "Ana.Silva@example.org"), (other_id, "olga")):
            db.session.add(
                Delivery(
                    announcement_id=announcement.id,
                    contact_id=contact_id,
                    status=DeliveryStatus.FAILED,
                    last_reply=f"550 5.1.1 <{address}>: Recipient address rejected",
                )
            )
        db.session.commit()

    with app.test_request_context():
        erase_contact(db.session.get(Contact, erased_id), "test")
        db.session.commit()

    with app.app_context():
        replies = dict(
            db.session.execute(sa.select(Delivery.contact_id, Delivery.last_reply)).all()
        )
    assert replies == {
        erased_id: f"550 5.1.1 <{ERASED}>: Recipient address rejected",
        other_id: "550 5.1.1 <olga>: Recipient address rejected",
    }
