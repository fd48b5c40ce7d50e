"""Adding a contact by hand must not forge consent. Someone the secretariat adds on their behalf
neither filled in the sign-up form nor saw the privacy notice: by default they are added as
pending and mailed the usual confirmation link. Adding them as active is an explicit choice
that needs a statement of why they agreed to be contacted; the consent log then holds one
"added by staff" event (the statement, the staff member) and nothing that reads as a sign-up
or a confirmation. Same design as imports (test_imports_consent.py)."""

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.models import ConsentEvent, Contact
from jeg_contacts.extensions import db
from tests.conftest import audit_entries, csrf_token, link_in, outbox_messages, staff_client
from tests.conftest import topic_ids as find_topic_ids
from tests.security.selfservice import consent_log, statuses

NEW = "/admin/contacts/new"
STATEMENT = "Asked at the 2025 Almaty workshop to receive JEG news; gave us her card."


def person(app: Flask, **changes: str) -> dict[str, object]:
    """What an editor types into the add form, status left out unless given."""
    body: dict[str, object] = {
        "organisation_name": "Kazhydromet",
        "stakeholder_type": "national_authority",
        "organisation_country": "KZ",
        "given_name": "Aigerim",
        "family_name": "Nurlanovna",
        "email": "aigerim@example.org",
        "language": "en",
        "topics": [str(topic) for topic in find_topic_ids(app, "pipelines", "general-news")],
    }
    body.update(changes)
    return body


def status_as_offered(page: str) -> str | None:
    """The status radio button the add form has ticked before anyone chooses."""
    ticked = re.search(
        r'<input type="radio" name="status" id="status-[a-z]+" value="([a-z]+)" checked', page
    )
    return ticked.group(1) if ticked else None


def add(client: FlaskClient, app: Flask, **changes: str):
    return client.post(NEW, data={"csrf_token": csrf_token(client, NEW), **person(app, **changes)})


def nothing_stored(app: Flask) -> bool:
    with app.app_context():
        return (
            all(
                db.session.scalar(sa.select(sa.func.count()).select_from(table)) == 0
                for table in (Contact, ConsentEvent)
            )
            and not db.session.scalars(
                sa.select(AuditEntry).where(AuditEntry.action == "contact.created")
            ).all()
        )


def confirm_by_link(client: FlaskClient, path: str) -> None:
    """Open the confirmation link as its owner does, and press its button."""
    assert client.get(path).status_code == 200
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code in (200, 302)


def test_a_contact_added_as_the_form_offers_is_pending_and_mailed_a_confirmation_link(
    smtp_app, smtp_server
):
    handler, _port = smtp_server
    editor = staff_client(smtp_app, "editor")
    page = editor.get(NEW).get_data(as_text=True)
    offered = status_as_offered(page)
    assert offered == "pending"

    response = add(editor, smtp_app, status=offered)

    assert response.status_code == 302
    assert statuses(smtp_app) == {"aigerim@example.org": "pending"}
    [message] = handler.wait_for(1)
    assert handler.envelopes[0][1] == ["aigerim@example.org"]
    # One event, saying who added them: no sign-up, no confirmation, no privacy notice.
    [(action, source, detail, notice)] = consent_log(smtp_app)["aigerim@example.org"]
    assert (action, source, notice) == ("added_by_staff", "added by editor@unece.test", None)
    assert detail == "status: pending; topics: pipelines, general-news; language: en"

    # Only the owner's own confirmation makes them active.
    confirm_by_link(smtp_app.test_client(), link_in(message, "/confirm/"))
    assert statuses(smtp_app) == {"aigerim@example.org": "active"}
    assert [event[0] for event in consent_log(smtp_app)["aigerim@example.org"]] == [
        "added_by_staff",
        "confirm",
    ]


@pytest.mark.parametrize(
    ("basis", "reason"),
    [
        (None, "Say why this person agreed to be contacted"),
        ("", "Say why this person agreed to be contacted"),
        (" \r\n\t ", "Say why this person agreed to be contacted"),
        ("\u200b\u200f", "Say why this person agreed to be contacted"),
        ("They agreed\x00<script>", "This field must be a single line of text."),
        ("x" * 501, "Use at most 500 characters."),
    ],
)
def test_adding_as_active_without_a_statement_is_refused(app, editor_client, basis, reason):
    changes = {"status": "active"} | ({} if basis is None else {"basis": basis})

    response = add(editor_client, app, **changes)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert reason in page
    # The form comes back with the choice as it was made, to correct.
    assert 'id="status-active" value="active" checked' in page
    assert nothing_stored(app)
    assert outbox_messages(app) == []


def test_adding_as_active_with_a_statement_records_one_added_by_staff_event(smtp_app, smtp_server):
    handler, _port = smtp_server
    editor = staff_client(smtp_app, "editor")

    # A statement typed over two lines is kept as one.
    response = add(editor, smtp_app, status="active", basis=STATEMENT.replace("; ", ";\r\n"))

    assert response.status_code == 302
    assert statuses(smtp_app) == {"aigerim@example.org": "active"}
    [(action, source, detail, notice)] = consent_log(smtp_app)["aigerim@example.org"]
    assert (action, source, notice) == ("added_by_staff", "added by editor@unece.test", None)
    assert detail == (
        f"basis: {STATEMENT}; status: active; topics: pipelines, general-news; language: en"
    )
    [entry] = audit_entries(smtp_app, "contact.created")
    assert entry.changes["basis"] == [None, STATEMENT]
    assert entry.changes["status"] == [None, "active"]
    # The contact page says in words what happened, and why.
    contact_page = editor.get(response.headers["Location"]).get_data(as_text=True)
    log = contact_page.split('id="consent-heading"', 1)[1].split("</section>", 1)[0]
    assert "<td>Added by staff</td>" in log
    assert STATEMENT in log
    assert "signup" not in log and "confirm" not in log
    assert handler.messages == []  # an active contact gets no confirmation link


def test_a_forged_post_cannot_add_an_active_contact_without_a_statement(app, editor_client):
    """The rule is the service's, not only the form's: a hand-made request that says active
    and leaves the statement out (or sends only spaces) adds nobody."""
    token = csrf_token(editor_client, NEW)
    for extra in ({}, {"basis": "   "}, {"basis": "\u200b"}):
        body = {"csrf_token": token, **person(app), "status": "active", **extra}

        response = editor_client.post(NEW, data=body)

        assert response.status_code == 400
        assert "Say why this person agreed to be contacted" in response.get_data(as_text=True)
    assert nothing_stored(app)
    assert outbox_messages(app) == []


def test_a_statement_given_with_pending_is_not_recorded(app, editor_client):
    """A pending contact confirms by their own act; what staff typed for active is dropped
    rather than kept as if it were the basis of their subscription."""
    response = add(editor_client, app, status="pending", basis=STATEMENT)

    assert response.status_code == 302
    [(action, _source, detail, _notice)] = consent_log(app)["aigerim@example.org"]
    assert action == "added_by_staff"
    assert STATEMENT not in detail
    [entry] = audit_entries(app, "contact.created")
    assert "basis" not in entry.changes
    assert len(outbox_messages(app)) == 1


def test_erasure_removes_what_staff_wrote_about_the_person(app, editor_client, admin_client):
    """The statement is free text about one person and may name them; once they are erased, it
    goes with the rest of their data. That staff added them, and the status, stay."""
    statement = "Aigerim Nurlanovna asked us at the workshop (aigerim@example.org)."
    assert add(editor_client, app, status="active", basis=statement).status_code == 302
    with app.app_context():
        contact_id = db.session.scalar(sa.select(Contact.id))
    url = f"/admin/contacts/{contact_id}/erase"
    response = admin_client.post(
        url, data={"csrf_token": csrf_token(admin_client, url), "confirm": "y"}
    )
    assert response.status_code == 302

    with app.app_context():
        every_row = "\n".join(
            str(row)
            for table in db.metadata.sorted_tables
            for row in db.session.execute(sa.select(table))
        )
        events = db.session.execute(
            sa.select(ConsentEvent.action, ConsentEvent.source, ConsentEvent.detail)
        ).all()
    for trace in ("Aigerim", "Nurlanovna", "aigerim@"):
        assert trace not in every_row
    assert [(action.value, source) for action, source, _detail in events] == [
        ("added_by_staff", "added by editor@unece.test"),
        ("erase", events[1][1]),
    ]
    assert events[0][2].startswith("basis: (erased); status: active; ")
