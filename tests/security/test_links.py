"""Links in our emails: opening one changes nothing, asking for a new one breaks no other."""

import re
from datetime import timedelta

import sqlalchemy as sa

from jeg_contacts.contacts.links import confirm_token
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import csrf_token, link_in, outbox_messages, post_signup, text_body
from tests.security.selfservice import (
    contact_id,
    post_forms,
    press_the_button,
    set_status,
    stored,
    token_of,
)

OWNER = "zoe.mueller@example.org"


def _active_owner(app) -> str:
    """An active subscriber; returns their preference/unsubscribe token."""
    post_signup(app.test_client(), app)
    set_status(app, OWNER, ContactStatus.ACTIVE)
    return token_of(app, OWNER)


def _ask_for_a_new_link(client, email: str):
    return client.post(
        "/new-link", data={"csrf_token": csrf_token(client, "/new-link"), "email": email}
    )


# Item 4: asking for a new link revokes nothing.


def test_a_stranger_asking_for_a_new_link_breaks_no_earlier_link(app):
    token = _active_owner(app)
    stranger = app.test_client()

    assert _ask_for_a_new_link(stranger, "ZOE.mueller@example.org").status_code == 302

    owner = app.test_client()
    assert owner.get(f"/preferences/{token}").status_code == 200
    assert owner.get(f"/unsubscribe/{token}").status_code == 200
    # The RFC 8058 one-click POST of a mail client, with the link from an earlier announcement.
    one_click = owner.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert stored(app, contact_id(app, OWNER))["status"] is ContactStatus.UNSUBSCRIBED


def test_the_new_link_mailed_on_request_works_alongside_the_old_one(app):
    token = _active_owner(app)
    _ask_for_a_new_link(app.test_client(), OWNER)
    client = app.test_client()
    assert client.get(link_in(outbox_messages(app)[-1], "/preferences/")).status_code == 200
    assert client.get(f"/preferences/{token}").status_code == 200


def test_revoking_earlier_links_is_an_explicit_choice_in_the_preference_centre(app):
    old = _active_owner(app)
    owner = app.test_client()
    forms = post_forms(owner, f"/preferences/{old}")
    [revoke] = [form for form in forms if form["action"].endswith("/revoke-links")]
    sent = len(outbox_messages(app))

    response = owner.post(revoke["action"], data=revoke["fields"])

    assert response.status_code == 302
    new = token_of(app, OWNER)
    assert new != old
    assert response.headers["Location"] == f"/preferences/{new}"
    landed = owner.get(response.headers["Location"])
    assert landed.status_code == 200
    assert "no longer work" in landed.get_data(as_text=True)
    # The new link also arrives by email.
    assert len(outbox_messages(app)) == sent + 1
    assert link_in(outbox_messages(app)[-1], "/preferences/") == f"/preferences/{new}"
    for path in (f"/preferences/{old}", f"/unsubscribe/{old}"):
        assert owner.get(path).status_code == 400
    one_click = owner.post(f"/unsubscribe/{old}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 400
    assert stored(app, contact_id(app, OWNER))["status"] is ContactStatus.ACTIVE


def test_revoking_links_needs_the_form_of_the_preference_page(app):
    token = _active_owner(app)
    before = stored(app, contact_id(app, OWNER))
    client = app.test_client()
    response = client.post(f"/preferences/{token}/revoke-links")
    assert response.status_code == 400
    assert client.get(f"/revoke-links/{token}").status_code == 404
    assert stored(app, contact_id(app, OWNER)) == before


def test_the_revoke_choice_explains_itself(app):
    token = _active_owner(app)
    page = app.test_client().get(f"/preferences/{token}").get_data(as_text=True)
    assert "Revoke all earlier links" in page
    assert "unsubscribe links in emails you already received" in page


def _store_an_address_no_header_can_carry(app, email: str) -> None:
    """An address kept from before today's checks: no message to it can be written."""
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email_key == email))
        contact.email = contact.email_key = "zoë.müller@example.org"
        db.session.commit()


def test_revoking_links_that_cannot_be_mailed_keeps_the_old_ones(app):
    token = _active_owner(app)
    _store_an_address_no_header_can_carry(app, OWNER)
    owner = app.test_client()
    forms = post_forms(owner, f"/preferences/{token}")
    [revoke] = [form for form in forms if form["action"].endswith("/revoke-links")]

    response = owner.post(revoke["action"], data=revoke["fields"])

    assert response.headers["Location"] == f"/preferences/{token}"
    page = owner.get(response.headers["Location"])
    assert page.status_code == 200
    assert "could not prepare the email" in page.get_data(as_text=True)


def test_a_fresh_confirmation_that_cannot_be_mailed_is_an_error_not_a_500(app):
    post_signup(app.test_client(), app)
    _store_an_address_no_header_can_carry(app, OWNER)
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        expired = confirm_token(contact, issued_at=utcnow() - timedelta(days=30))
    client = app.test_client()
    response = press_the_button(client, f"/confirm/{expired}", f"/confirm/{expired}/resend")
    assert response.headers["Location"] == "/new-link"
    assert "could not prepare the email" in client.get("/new-link").get_data(as_text=True)


def test_erasure_still_revokes_every_link(app):
    # Regression guard: erasure must keep rotating the secret now that new links do not.
    token = _active_owner(app)
    owner = app.test_client()
    press_the_button(owner, f"/preferences/{token}/erase")
    assert owner.get(f"/preferences/{token}").status_code == 400
    assert owner.post(f"/unsubscribe/{token}").status_code == 400


# Item 5: opening a link changes nothing; only pressing the button confirms.


def test_opening_a_confirmation_link_changes_nothing(app):
    post_signup(app.test_client(), app)
    link = link_in(outbox_messages(app)[-1], "/confirm/")
    person = contact_id(app, OWNER)
    before = stored(app, person)

    # A mail scanner fetches the link, perhaps more than once, with or without cookies.
    for _ in range(2):
        response = app.test_client().get(link)
        assert response.status_code == 200
        assert stored(app, person) == before
    assert "Confirm my subscription" in response.get_data(as_text=True)

    [form] = post_forms(app.test_client(), link)
    assert form["action"] == link
    assert form["buttons"] == 1
    assert stored(app, person) == before


def test_pressing_the_button_confirms(app):
    post_signup(app.test_client(), app)
    link = link_in(outbox_messages(app)[-1], "/confirm/")
    client = app.test_client()

    response = press_the_button(client, link)

    assert response.status_code == 200
    assert "Your subscription is confirmed" in response.get_data(as_text=True)
    after = stored(app, contact_id(app, OWNER))
    assert after["status"] is ContactStatus.ACTIVE
    assert [action for action, _at, _version in after["consent"]] == ["signup", "confirm"]
    # Opening the link again says so, and changes nothing more.
    again = client.get(link)
    assert again.status_code == 200
    assert "Your subscription is confirmed" in again.get_data(as_text=True)
    assert stored(app, contact_id(app, OWNER)) == after


def test_a_confirmation_post_from_elsewhere_is_refused(app):
    post_signup(app.test_client(), app)
    link = link_in(outbox_messages(app)[-1], "/confirm/")
    before = stored(app, contact_id(app, OWNER))
    response = app.test_client().post(link)
    assert response.status_code == 400
    assert stored(app, contact_id(app, OWNER)) == before


def test_head_requests_change_nothing(app):
    # Some scanners send HEAD, which Flask routes like GET: it must not count as the POST.
    token = _active_owner(app)
    before = stored(app, contact_id(app, OWNER))
    client = app.test_client()
    for url in (f"/unsubscribe/{token}", f"/preferences/{token}/erase", f"/preferences/{token}"):
        assert client.head(url).status_code == 200, url
        assert stored(app, contact_id(app, OWNER)) == before, url


def _links_in(message) -> set[str]:
    """Every link to our site in both parts of a message, and in its List-Unsubscribe header."""
    html = message.get_body(preferencelist=("html",)).get_content()
    found = set(re.findall(r"http://jeg\.test[^\s\"<>]*", text_body(message) + html))
    found |= set(re.findall(r"<(http://jeg\.test[^>]+)>", str(message["List-Unsubscribe"] or "")))
    return {link.removeprefix("http://jeg.test").replace("&amp;", "&") for link in found}


def test_fetching_every_link_of_every_email_we_send_changes_nothing(smtp_app, smtp_server):
    app = smtp_app
    handler, _port = smtp_server
    client = app.test_client()
    # A pending sign-up (confirmation email), an active subscriber who signs up again
    # (preferences link email), and an announcement to the active subscriber.
    post_signup(client, app, email="pending@example.org")
    post_signup(client, app)
    set_status(app, OWNER, ContactStatus.ACTIVE)
    post_signup(client, app)
    with app.app_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(
                subject_en="Workshop", body_en="Dear {{ given_name }}, see you.", criteria={}
            )
        )
        mailing.start_sending(announcement)
        db.session.commit()
    DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()
    messages = handler.wait_for(4)
    with app.app_context():
        people = list(db.session.scalars(sa.select(Contact.id)))
    before = {person: stored(app, person) for person in people}

    links = set().union(*(_links_in(message) for message in messages))
    assert any(link.startswith("/confirm/") for link in links)
    assert any(link.startswith("/preferences/") for link in links)
    assert any(link.startswith("/unsubscribe/") for link in links)
    scanner = app.test_client()
    for link in sorted(links):
        assert scanner.get(link).status_code < 500, link
        assert scanner.head(link).status_code < 500, link

    assert {person: stored(app, person) for person in people} == before
