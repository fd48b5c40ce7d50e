"""Confirmation links expire; preference and unsubscribe links are revocable; forgeries fail."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.links import confirm_token, manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db, utcnow
from tests.conftest import csrf_token, link_in, outbox_messages, post_signup


def _only_contact(app) -> Contact:
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        db.session.expunge(contact)
        return contact


def _status(app) -> ContactStatus:
    return _only_contact(app).status


def _signed_up(app, client) -> str:
    post_signup(client, app)
    return link_in(outbox_messages(app)[-1], "/confirm/")


def _confirm(client, confirm_path: str):
    """Open the confirmation link and press its button."""
    return client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})


def _active_with_token(app, client) -> str:
    _confirm(client, _signed_up(app, client))
    with app.app_context():
        return manage_token(db.session.scalar(sa.select(Contact)))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "2" + token[token.index(".") :],
        lambda token: token.split(".")[0],
        lambda token: "garbage",
        lambda token: "1." + "x" * 300,
        lambda token: "\uff11.\uff12.\uff13",  # full-width digits pass str.isdigit()
    ],
)
def test_tampered_confirmation_link_is_refused_with_a_way_forward(app, client, mangle):
    confirm_path = _signed_up(app, client)
    token = confirm_path.removeprefix("/confirm/")
    response = client.get(f"/confirm/{mangle(token)}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This link does not work" in page
    assert 'action="/new-link"' in page
    assert _status(app) is ContactStatus.PENDING


def test_expired_confirmation_link_offers_a_fresh_one(app, client):
    post_signup(client, app)
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        old = confirm_token(contact, issued_at=utcnow() - timedelta(days=7, minutes=1))
    response = client.get(f"/confirm/{old}")
    assert response.status_code == 400
    assert "This link has expired" in response.get_data(as_text=True)
    assert _status(app) is ContactStatus.PENDING

    resend = client.post(
        f"/confirm/{old}/resend", data={"csrf_token": csrf_token(client, f"/confirm/{old}")}
    )
    assert resend.status_code == 302
    fresh = link_in(outbox_messages(app)[-1], "/confirm/")
    assert fresh != f"/confirm/{old}"
    assert _confirm(client, fresh).status_code == 200
    assert _status(app) is ContactStatus.ACTIVE


def test_confirmation_link_still_valid_just_before_expiry(app, client):
    post_signup(client, app)
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        token = confirm_token(contact, issued_at=utcnow() - timedelta(days=6, hours=23))
    assert _confirm(client, f"/confirm/{token}").status_code == 200
    assert _status(app) is ContactStatus.ACTIVE


def test_confirmation_link_does_not_resubscribe_after_unsubscribing(app, client):
    confirm_path = _signed_up(app, client)
    _confirm(client, confirm_path)
    with app.app_context():
        token = manage_token(db.session.scalar(sa.select(Contact)))
    client.post(f"/unsubscribe/{token}")
    assert client.get(confirm_path).status_code == 400
    response = client.post(confirm_path, data={"csrf_token": csrf_token(client, "/new-link")})
    assert response.status_code == 400
    assert _status(app) is ContactStatus.UNSUBSCRIBED


def test_forged_preferences_token_is_refused(app, client):
    token = _active_with_token(app, client)
    contact_id, signature = token.split(".")
    other = "A" * len(signature)
    assert client.get(f"/preferences/{contact_id}.{other}").status_code == 400
    assert client.post(f"/unsubscribe/{contact_id}.{other}").status_code == 400
    assert _status(app) is ContactStatus.ACTIVE


def test_asking_for_a_new_link_mails_the_preferences_link(app, client):
    old_token = _active_with_token(app, client)
    response = client.post(
        "/new-link",
        data={"csrf_token": csrf_token(client, "/new-link"), "email": "ZOE.mueller@example.org"},
    )
    assert response.status_code == 302
    new_path = link_in(outbox_messages(app)[-1], "/preferences/")
    assert client.get(new_path).status_code == 200
    # Anyone may ask for a new link, so asking revokes nothing (tests/security/test_links.py).
    assert new_path == f"/preferences/{old_token}"
    assert _status(app) is ContactStatus.ACTIVE


def test_new_link_for_unknown_address_looks_the_same_and_sends_nothing(app, client):
    response = client.post(
        "/new-link",
        data={"csrf_token": csrf_token(client, "/new-link"), "email": "nobody@example.org"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/new-link/sent")
    assert outbox_messages(app) == []


def test_new_link_for_a_pending_address_resends_the_confirmation(app, client):
    post_signup(client, app)
    client.post(
        "/new-link",
        data={"csrf_token": csrf_token(client, "/new-link"), "email": "zoe.mueller@example.org"},
    )
    messages = outbox_messages(app)
    assert len(messages) == 2
    assert _confirm(client, link_in(messages[-1], "/confirm/")).status_code == 200
    assert _status(app) is ContactStatus.ACTIVE


def test_new_link_with_invalid_address_shows_the_error(app, client):
    response = client.post(
        "/new-link", data={"csrf_token": csrf_token(client, "/new-link"), "email": "nope"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address" in response.get_data(as_text=True)
