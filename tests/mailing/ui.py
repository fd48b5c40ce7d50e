"""Helpers for driving the announcement pages through the test client."""

import re

from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts.extensions import db
from jeg_contacts.mailing.models import Announcement
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import csrf_token

NEW = "/admin/announcements/new"


def compose_form(**overrides: object) -> dict[str, object]:
    """A valid compose form: English only, every active contact."""
    form: dict[str, object] = {
        "kind": "activity",
        "subject_en": "Workshop on tailings safety",
        "body_en": "Dear {{ given_name }},\n\nThe **workshop** is in Almaty.",
        "subject_fr": "",
        "body_fr": "",
        "subject_ru": "",
        "body_ru": "",
        "saved_audience": "",
        "preview_language": "en",
        "action": "save",
    }
    form.update(overrides)
    return form


def post(client: FlaskClient, url: str, data: dict | None = None, token_from: str = NEW):
    """POST with a CSRF token taken from a page the client can open."""
    return client.post(url, data={"csrf_token": csrf_token(client, token_from), **(data or {})})


def create(client: FlaskClient, **overrides: object) -> int:
    """Save a draft through the compose page; returns its id."""
    response = post(client, NEW, compose_form(**overrides))
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/admin/announcements/(\d+)$", response.headers["Location"]).group(1))


def send_now(client: FlaskClient, announcement_id: int):
    url = f"/admin/announcements/{announcement_id}/send"
    return post(client, url, {"when": "now"}, token_from=url)


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def run_worker(app: Flask) -> None:
    DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()


def announcement(app: Flask, announcement_id: int) -> Announcement:
    """The announcement as stored now (detached, attributes loaded)."""
    with app.app_context():
        found = db.session.get(Announcement, announcement_id)
        db.session.expunge(found)
        return found
