"""Bulk actions on a filtered selection: preview, confirmation, set-based apply, audit."""

import re

import pytest
import sqlalchemy as sa

from jeg_contacts.audiences.services import ContactFilter
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    Topic,
    subscriptions,
)
from jeg_contacts.directory import bulk
from jeg_contacts.directory.bulk import BulkAction, BulkChange
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from tests.conftest import csrf_token
from tests.directory.conftest import audit_entries, load_contact, make_contact, topic_id


@pytest.fixture
def people(app) -> dict[str, int]:
    """Two German contacts (one already on oil terminals), one French, one erased German."""
    return {
        "de_pipelines": make_contact(app, family_name="Adler", topics=("pipelines",)),
        "de_both": make_contact(
            app, family_name="Braun", topics=("pipelines", "oil-terminals"), status="pending"
        ),
        "fr": make_contact(
            app,
            family_name="Carre",
            organisation="Ineris",
            organisation_country="FR",
            topics=("general-news",),
        ),
        "de_erased": make_contact(app, family_name="Dorn", status="erased"),
    }


def slugs(app, contact_id: int) -> list[str]:
    return sorted(topic.slug for topic in load_contact(app, contact_id).topics)


# --- Service ------------------------------------------------------------------------------


def test_preview_counts_selection_and_actual_changes(app, people):
    terminals = topic_id(app, "oil-terminals")
    germans = ContactFilter(countries=("DE",))
    with app.test_request_context():
        add = BulkChange(BulkAction.ADD_TOPIC, topic=db.session.get(Topic, terminals))
        preview = bulk.preview_bulk_change(germans, [], add)

    assert (preview.selected, preview.changing) == (2, 1)  # the erased one is never selected


def test_adding_a_topic_changes_only_those_without_it_and_audits_each(app, people):
    terminals = topic_id(app, "oil-terminals")
    with app.test_request_context():
        change = bulk.bulk_change("add_topic", terminals, None)
        count = bulk.apply_bulk_change(
            ContactFilter(countries=("DE",)), [], change, staff_email="ed@example.org"
        )
        db.session.commit()

    assert count == 1
    assert slugs(app, people["de_pipelines"]) == ["oil-terminals", "pipelines"]
    assert slugs(app, people["de_both"]) == ["oil-terminals", "pipelines"]
    assert slugs(app, people["fr"]) == ["general-news"]
    assert load_contact(app, people["de_pipelines"]).version == 2
    assert load_contact(app, people["de_both"]).version == 2  # pending: set by make_contact
    [entry] = audit_entries(app, action="contact.topics_changed")
    assert entry.entity_id == people["de_pipelines"]
    assert entry.changes == {"topics": [["pipelines"], ["oil-terminals", "pipelines"]]}
    [summary] = audit_entries(app, action="contact.bulk_action")
    assert summary.entity_id is None
    assert summary.changes["contacts"] == 1
    assert "country Germany" in summary.changes["selection"]
    consent = load_contact(app, people["de_pipelines"]).consent_events[-1]
    assert consent.action is ConsentAction.PREFERENCES_CHANGED
    assert consent.detail == "added topic: oil-terminals"
    assert consent.source == "secretariat (ed@example.org)"


def test_setting_a_status_records_consent_by_previous_status(app, people):
    with app.test_request_context():
        change = bulk.bulk_change("set_status", None, "active")
        count = bulk.apply_bulk_change(ContactFilter(), [], change, staff_email="ed@example.org")
        db.session.commit()

    assert count == 1  # only the pending one was not active yet
    contact = load_contact(app, people["de_both"])
    assert contact.status is ContactStatus.ACTIVE
    assert contact.confirmed_at is not None
    assert contact.version == 3  # open edit forms of this contact are now stale
    assert contact.consent_events[-1].action is ConsentAction.CONFIRM
    [entry] = audit_entries(app, action="contact.status_changed")
    assert entry.changes == {"status": ["pending", "active"]}
    assert load_contact(app, people["de_erased"]).status is ContactStatus.ERASED


def test_erased_contacts_are_never_changed_even_when_filtered_for(app, people):
    with app.test_request_context():
        change = bulk.bulk_change("set_status", None, "bounced")
        count = bulk.apply_bulk_change(
            ContactFilter(statuses=(ContactStatus.ERASED,)), [], change, staff_email="x@y.org"
        )

    assert count == 0
    assert load_contact(app, people["de_erased"]).status is ContactStatus.ERASED


def test_ticked_rows_limit_the_selection(app, people):
    with app.test_request_context():
        change = bulk.bulk_change("set_status", None, "bounced")
        count = bulk.apply_bulk_change(
            ContactFilter(), [people["fr"]], change, staff_email="x@y.org"
        )
        db.session.commit()

    assert count == 1
    assert load_contact(app, people["fr"]).status is ContactStatus.BOUNCED
    assert load_contact(app, people["de_pipelines"]).status is ContactStatus.ACTIVE


def test_confirmed_count_that_no_longer_holds_is_refused(app, people):
    with app.test_request_context():
        change = bulk.bulk_change("set_status", None, "bounced")
        with pytest.raises(bulk.SelectionChanged) as refused:
            bulk.apply_bulk_change(
                ContactFilter(), [], change, staff_email="x@y.org", expected_count=2
            )

    assert refused.value.count == 3


@pytest.mark.parametrize(
    ("action", "topic", "status", "field"),
    [
        ("", None, None, "action"),
        ("teleport", None, None, "action"),
        ("add_topic", None, None, "topic_id"),
        ("add_topic", 424242, None, "topic_id"),
        ("set_status", None, "erased", "new_status"),
        ("set_status", None, "pending", "new_status"),
    ],
)
def test_incomplete_bulk_choices_are_refused(app, action, topic, status, field):
    with app.test_request_context(), pytest.raises(ValidationFailed) as refused:
        bulk.bulk_change(action, topic, status)
    assert refused.value.field == field


def test_archived_topic_can_be_removed_but_not_added(app, people):
    pipelines = topic_id(app, "pipelines")
    with app.app_context():
        db.session.get(Topic, pipelines).active = False
        db.session.commit()
    with app.test_request_context():
        with pytest.raises(ValidationFailed):
            bulk.bulk_change("add_topic", pipelines, None)
        change = bulk.bulk_change("remove_topic", pipelines, None)
        count = bulk.apply_bulk_change(ContactFilter(), [], change, staff_email="x@y.org")
        db.session.commit()

    assert count == 2
    assert slugs(app, people["de_both"]) == ["oil-terminals"]
    assert slugs(app, people["de_pipelines"]) == []


def test_thousands_of_contacts_change_in_one_go(app):
    general = topic_id(app, "general-news")
    with app.app_context():
        db.session.add_all(
            Contact(
                given_name="Bulk",
                family_name=f"{number:04d}",
                email=f"bulk{number}@example.org",
                email_key=f"bulk{number}@example.org",
                link_secret="x",
                status=ContactStatus.ACTIVE,
            )
            for number in range(2500)
        )
        db.session.commit()
    with app.test_request_context():
        change = bulk.bulk_change("add_topic", general, None)
        count = bulk.apply_bulk_change(ContactFilter(q="bulk"), [], change, staff_email="x@y.org")
        db.session.commit()

    assert count == 2500
    with app.app_context():
        audited = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "contact.topics_changed")
        )
        consents = db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent))
        subscribed = db.session.scalar(sa.select(sa.func.count()).select_from(subscriptions))
    assert (audited, consents, subscribed) == (2500, 2500, 2500)


# --- Views --------------------------------------------------------------------------------


def test_bulk_link_carries_the_filter_to_a_confirmation_page(app, editor_client, people):
    listing = editor_client.get("/admin/contacts?country=DE&sort=-name").get_data(as_text=True)
    assert 'href="/admin/contacts/bulk?country=DE&amp;sort=-name">Bulk action on all 2' in listing

    chooser = editor_client.get("/admin/contacts/bulk?country=DE&sort=-name")
    page = chooser.get_data(as_text=True)
    assert chooser.status_code == 200
    assert "<strong>2</strong> contacts selected" in page
    assert "country Germany" in page

    terminals = topic_id(app, "oil-terminals")
    confirm = editor_client.get(
        f"/admin/contacts/bulk?country=DE&sort=-name&action=add_topic&topic_id={terminals}"
    ).get_data(as_text=True)
    assert "This will <strong>add topic “Safety of oil terminals”</strong>" in confirm
    assert "for <strong>1</strong> contact." in confirm
    assert "The other 1 selected already match" in confirm
    assert 'action="/admin/contacts/bulk?country=DE&amp;sort=-name"' in confirm
    assert 'name="confirmed_count" value="1"' in confirm
    # Nothing changes before the confirmation is posted.
    assert slugs(app, people["de_pipelines"]) == ["pipelines"]


def post_bulk(client, query, **fields):
    token = csrf_token(client, "/admin/contacts/bulk?" + query)
    return client.post("/admin/contacts/bulk?" + query, data={"csrf_token": token, **fields})


def test_confirmed_bulk_action_applies_and_returns_to_the_list(app, editor_client, people):
    response = post_bulk(
        editor_client,
        "country=DE&sort=-name",
        action="set_status",
        new_status="unsubscribed",
        confirmed_count="2",
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/contacts?country=DE&sort=-name"
    listing = editor_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Done: set status to unsubscribed for 2 contact(s)." in listing
    assert load_contact(app, people["de_pipelines"]).status is ContactStatus.UNSUBSCRIBED
    assert load_contact(app, people["de_both"]).status is ContactStatus.UNSUBSCRIBED
    assert load_contact(app, people["fr"]).status is ContactStatus.ACTIVE
    entries = audit_entries(app, action="contact.status_changed")
    assert {entry.entity_id for entry in entries} == {people["de_pipelines"], people["de_both"]}
    assert {entry.actor for entry in entries} == {"editor@unece.test"}
    assert len(audit_entries(app, action="contact.bulk_action")) == 1


def test_bulk_action_on_ticked_rows_only(app, editor_client, people):
    listing = editor_client.get("/admin/contacts").get_data(as_text=True)
    assert f'name="ids" value="{people["fr"]}" form="ticked"' in listing

    confirm = editor_client.get(
        f"/admin/contacts/bulk?scope=ticked&ids={people['fr']}&action=set_status&new_status=bounced"
    ).get_data(as_text=True)
    assert "The 1 ticked contact(s)" in confirm
    assert f'name="ids" value="{people["fr"]}"' in confirm

    response = post_bulk(
        editor_client,
        "",
        action="set_status",
        new_status="bounced",
        confirmed_count="1",
        scope="ticked",
        ids=str(people["fr"]),
    )

    assert response.status_code == 302
    assert load_contact(app, people["fr"]).status is ContactStatus.BOUNCED
    assert load_contact(app, people["de_pipelines"]).status is ContactStatus.ACTIVE


def test_ticked_scope_without_ticks_changes_nothing(app, editor_client, people):
    chooser = editor_client.get("/admin/contacts/bulk?scope=ticked")
    assert chooser.status_code == 302
    posted = post_bulk(editor_client, "", action="set_status", new_status="bounced", scope="ticked")
    assert posted.status_code == 302
    listing = editor_client.get("/admin/contacts").get_data(as_text=True)
    assert "Tick at least one contact" in listing or "No contact was ticked" in listing
    assert load_contact(app, people["fr"]).status is ContactStatus.ACTIVE


def test_selection_that_moved_since_confirmation_is_shown_again(app, editor_client, people):
    response = post_bulk(
        editor_client, "", action="set_status", new_status="bounced", confirmed_count="1"
    )

    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "nothing was changed" in page
    assert 'name="confirmed_count" value="3"' in page
    assert audit_entries(app, action="contact.status_changed") == []
    assert load_contact(app, people["fr"]).status is ContactStatus.ACTIVE


def test_invalid_bulk_choice_is_explained(app, editor_client, people):
    response = editor_client.get("/admin/contacts/bulk?action=add_topic&topic_id=")

    assert response.status_code == 400
    assert "Choose a topic from the list." in response.get_data(as_text=True)


def test_bulk_post_without_csrf_token_is_refused(app, editor_client, people):
    response = editor_client.post(
        "/admin/contacts/bulk", data={"action": "set_status", "new_status": "bounced"}
    )

    assert response.status_code == 400
    assert load_contact(app, people["fr"]).status is ContactStatus.ACTIVE


def test_nothing_to_do_has_no_confirm_button(app, editor_client, people):
    page = editor_client.get(
        "/admin/contacts/bulk?country=FR&action=set_status&new_status=active"
    ).get_data(as_text=True)

    assert "Nothing to do" in page
    assert not re.search(r'<form method="post"[^>]*bulk', page)


def test_status_filter_and_new_status_do_not_get_mixed_up(app, editor_client, people):
    page = editor_client.get(
        "/admin/contacts/bulk?status=active&action=set_status&new_status=bounced"
    ).get_data(as_text=True)

    assert "<strong>2</strong> contacts selected" in page  # the active ones, not the bounced
    assert "for <strong>2</strong> contacts." in page
