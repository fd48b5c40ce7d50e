"""Abuse limits that answer the same way whatever the address."""

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, link_in, make_app, outbox_messages, post_signup


def test_at_most_three_emails_per_address_per_day(app, client):
    responses = [post_signup(client, app) for _ in range(5)]
    assert {r.status_code for r in responses} == {302}
    assert {r.headers["Location"] for r in responses} == {"/signup/check-your-inbox"}
    assert len(outbox_messages(app)) == 3

    # "Send me a new link" shares the same allowance.
    client.post(
        "/new-link",
        data={"csrf_token": csrf_token(client, "/new-link"), "email": "zoe.mueller@example.org"},
    )
    assert len(outbox_messages(app)) == 3

    # Other addresses are unaffected.
    post_signup(client, app, email="someone.else@example.org")
    assert len(outbox_messages(app)) == 4


def test_refused_link_requests_send_nothing_and_every_link_sent_still_works(app, client):
    post_signup(client, app)
    with app.app_context():
        db.session.scalar(sa.select(Contact)).status = ContactStatus.ACTIVE
        db.session.commit()
    for _ in range(4):
        client.post(
            "/new-link",
            data={
                "csrf_token": csrf_token(client, "/new-link"),
                "email": "zoe.mueller@example.org",
            },
        )
    # The confirmation and two new links went out, then the cap refused the rest.
    messages = outbox_messages(app)
    assert len(messages) == 3
    assert client.get(link_in(messages[-1], "/preferences/")).status_code == 200
    assert client.get(link_in(messages[-2], "/preferences/")).status_code == 200


def test_too_many_signup_posts_from_one_client_get_429(tmp_path):
    app = make_app(tmp_path, SIGNUP_RATE_LIMIT=3, SIGNUP_RATE_WINDOW_SECONDS=600)
    client = app.test_client()
    codes = [post_signup(client, app, email=f"person{n}@example.org").status_code for n in range(4)]
    assert codes == [302, 302, 302, 429]
    refused = post_signup(client, app, email="late@example.org")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]
    assert "Too many requests" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 3

    other_client = app.test_client()
    other_client.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    assert post_signup(other_client, app, email="elsewhere@example.org").status_code == 302
