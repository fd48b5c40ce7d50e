"""A sign-up with someone else's address changes nothing about them until they confirm;
the per-address mail cap cannot be dodged with +tags and keeps no address."""

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.extensions import db, utcnow
from tests.conftest import csrf_token, link_in, outbox_messages, post_signup, text_body, topic_ids
from tests.security.selfservice import (
    contact_id,
    organisation_names,
    post_forms,
    press_the_button,
    row_count,
    set_status,
    stored,
    token_of,
)

OWNER = "zoe.mueller@example.org"


def _intruder_signup(client, app, **overrides):
    """What a stranger types into the sign-up form with the owner's address."""
    values = {
        "email": "Zoe.Mueller@example.org",
        "salutation": "mr",
        "given_name": "Mallory",
        "family_name": "Intruder",
        "organisation_name": "Intruder Holdings",
        "stakeholder_type": "operator",
        "organisation_country": "FR",
        "organisation_website": "https://intruder.example",
        "job_title": "Impostor",
        "phone": "+33 1 00 00 00 00",
        "country": "FR",
        "language": "ru",
        "topics": [str(i) for i in topic_ids(app, "checklists")],
    }
    values.update(overrides)
    return post_signup(client, app, **values)


def _last_confirm_link(app) -> str:
    return link_in(outbox_messages(app)[-1], "/confirm/")


@pytest.mark.parametrize(
    "status", [ContactStatus.PENDING, ContactStatus.UNSUBSCRIBED, ContactStatus.BOUNCED]
)
def test_signup_with_a_known_address_changes_nothing_until_its_owner_confirms(app, status):
    owner = app.test_client()
    post_signup(owner, app)
    set_status(app, OWNER, status)
    person = contact_id(app, OWNER)
    before = stored(app, person)

    stranger = app.test_client()
    response = _intruder_signup(stranger, app)

    assert response.status_code == 302
    assert response.headers["Location"] == "/signup/check-your-inbox"
    assert stored(app, person) == before
    assert "Intruder Holdings" not in organisation_names(app)

    # The owner's inbox gets the link, and the page it opens shows what would be saved.
    message = outbox_messages(app)[-1]
    assert message["To"].addresses[0].addr_spec.casefold() == OWNER
    link = link_in(message, "/confirm/")
    page = owner.get(link).get_data(as_text=True)
    assert "Mallory" in page and "Intruder Holdings" in page
    assert stored(app, person) == before

    confirmed = press_the_button(owner, link)
    assert confirmed.status_code == 200
    after = stored(app, person)
    assert after["status"] is ContactStatus.ACTIVE
    assert (after["given_name"], after["family_name"], after["phone"]) == (
        "Mallory",
        "Intruder",
        "+33 1 00 00 00 00",
    )
    assert after["organisation"] == (
        "Intruder Holdings",
        "FR",
        "operator",
        "https://intruder.example",
    )
    assert after["topics"] == ["checklists"]
    assert after["language"] == "ru"
    assert [action for action, _at, _version in after["consent"]] == [
        *(action for action, _at, _version in before["consent"]),
        "signup",
        "confirm",
    ]


def test_signup_with_an_active_address_changes_nothing_and_mails_the_preferences_link(app):
    # Regression guard: this was already right on main, and the new design must keep it.
    owner = app.test_client()
    post_signup(owner, app)
    set_status(app, OWNER, ContactStatus.ACTIVE)
    person = contact_id(app, OWNER)
    before = stored(app, person)

    response = _intruder_signup(app.test_client(), app)

    assert response.headers["Location"] == "/signup/check-your-inbox"
    assert stored(app, person) == before
    assert "/preferences/" in text_body(outbox_messages(app)[-1])
    assert row_count(app, "signup_requests") == 0


def test_an_older_confirmation_link_applies_the_details_it_was_sent_for(app):
    owner = app.test_client()
    post_signup(owner, app)
    set_status(app, OWNER, ContactStatus.UNSUBSCRIBED)
    person = contact_id(app, OWNER)
    _intruder_signup(owner, app, given_name="Anna", language="en")
    first = _last_confirm_link(app)
    _intruder_signup(app.test_client(), app, given_name="Berta", language="en")
    second = _last_confirm_link(app)
    assert first != second

    press_the_button(owner, first)
    assert stored(app, person)["given_name"] == "Anna"

    # The later proposal is not applied through its own link either, once the owner confirmed.
    later = owner.get(second)
    assert later.status_code == 400
    assert "can no longer be used" in later.get_data(as_text=True)
    assert stored(app, person)["given_name"] == "Anna"
    assert row_count(app, "signup_requests") == 0


def test_the_first_link_of_a_new_address_confirms_the_first_details(app):
    owner = app.test_client()
    post_signup(owner, app)
    first = _last_confirm_link(app)
    person = contact_id(app, OWNER)
    _intruder_signup(app.test_client(), app)

    press_the_button(owner, first)

    after = stored(app, person)
    assert after["status"] is ContactStatus.ACTIVE
    assert (after["given_name"], after["family_name"]) == ("Zoë", "Müller")
    assert after["organisation"][0] == "Umweltbundesamt"


def test_the_answer_is_the_same_whatever_the_state_of_the_address(app):
    answers = []
    for n, status in enumerate([None, *ContactStatus]):
        if status is ContactStatus.ERASED:
            continue
        email = f"person{n}@example.org"
        if status is not None:
            post_signup(app.test_client(), app, email=email)
            set_status(app, email, status)
        sent = len(outbox_messages(app))
        client = app.test_client()
        response = _intruder_signup(client, app, email=email)
        page = client.get(response.headers["Location"])
        answers.append((response.status_code, response.headers["Location"], page.data))
        assert len(outbox_messages(app)) == sent + 1, status
    assert len(set(answers)) == 1


def test_erasure_deletes_the_details_waiting_for_confirmation(app):
    owner = app.test_client()
    post_signup(owner, app)
    set_status(app, OWNER, ContactStatus.UNSUBSCRIBED)
    _intruder_signup(app.test_client(), app, family_name="Proposedname")
    waiting = _last_confirm_link(app)
    assert row_count(app, "signup_requests") == 1

    erase = f"/preferences/{token_of(app, OWNER)}/erase"
    assert press_the_button(owner, erase).status_code == 200

    assert row_count(app, "signup_requests") == 0
    with app.app_context():
        rows = db.session.execute(sa.text("SELECT * FROM contacts")).all()
    assert "Proposedname" not in repr(rows)
    assert owner.get(waiting).status_code == 400


def test_details_waiting_longer_than_a_link_lives_are_deleted(app):
    post_signup(app.test_client(), app)
    set_status(app, OWNER, ContactStatus.BOUNCED)
    _intruder_signup(app.test_client(), app)
    stale = _last_confirm_link(app)
    with app.app_context():
        days = app.config["CONFIRM_LINK_MAX_AGE_DAYS"]
        db.session.execute(
            sa.text("UPDATE signup_requests SET created_at = :at"),
            {"at": utcnow() - timedelta(days=days, minutes=1)},
        )
        db.session.commit()

    # Any later sign-up tidies them away.
    post_signup(app.test_client(), app, email="someone.else@example.org")

    assert row_count(app, "signup_requests") == 0
    assert app.test_client().get(stale).status_code == 400
    assert stored(app, contact_id(app, OWNER))["status"] is ContactStatus.BOUNCED


def test_refused_details_store_nothing(app):
    post_signup(app.test_client(), app)
    set_status(app, OWNER, ContactStatus.UNSUBSCRIBED)
    person = contact_id(app, OWNER)
    before = stored(app, person)
    sent = len(outbox_messages(app))

    response = _intruder_signup(app.test_client(), app, phone="call me maybe")

    assert response.status_code == 400
    assert "phone number" in response.get_data(as_text=True)
    assert stored(app, person) == before
    assert row_count(app, "signup_requests") == 0
    assert len(outbox_messages(app)) == sent


# Item 7: the per-address mail cap.


def test_plus_tags_share_one_mail_cap(app):
    client = app.test_client()
    for n in range(5):
        post_signup(client, app, email=f"zoe+{n}@example.org")
    post_signup(client, app, email="ZOE@example.org")
    post_signup(client, app, email="zoe+tag+more@example.org")
    assert len(outbox_messages(app)) == app.config["EMAILS_PER_ADDRESS_PER_DAY"] == 3

    # New links for a tagged address count against the same cap.
    client.post(
        "/new-link",
        data={"csrf_token": csrf_token(client, "/new-link"), "email": "zoe+0@example.org"},
    )
    assert len(outbox_messages(app)) == 3

    post_signup(client, app, email="zoe.other@example.org")
    assert len(outbox_messages(app)) == 4


def test_the_mail_cap_keeps_nothing_that_leads_back_to_the_address(app):
    client = app.test_client()
    post_signup(client, app, email="Zoe.Mueller+news@Example.org")
    with app.app_context():
        kept = db.session.execute(sa.text("SELECT bucket, key_hash FROM rate_limit_hits")).all()
    keys = {key for bucket, key in kept if bucket == "address-mail"}
    assert len(keys) == 1
    guesses = {
        variant
        for address in ("Zoe.Mueller+news@Example.org", "zoe.mueller@example.org")
        for variant in (address, address.casefold(), address.replace("+news", ""))
    }
    hashes = {
        getattr(hashlib, name)(guess.encode()).hexdigest()
        for guess in guesses
        for name in ("sha256", "sha1", "md5")
    }
    [key] = keys
    assert key not in hashes | guesses
    assert all(guess.casefold() not in key.casefold() for guess in guesses)


def test_confirm_page_for_a_proposal_has_one_button_and_no_other_form(app):
    post_signup(app.test_client(), app)
    set_status(app, OWNER, ContactStatus.UNSUBSCRIBED)
    _intruder_signup(app.test_client(), app)
    link = _last_confirm_link(app)
    owner = app.test_client()
    [form] = post_forms(owner, link)
    assert form["action"] == link
    assert form["buttons"] == 1
