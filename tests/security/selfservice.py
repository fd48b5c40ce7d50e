"""Helpers for the self-service security tests: forms on a page, what is stored about a person."""

from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus, Organisation
from jeg_contacts.extensions import db, utcnow


class Forms(HTMLParser):
    """The forms of a page: method, action, the hidden and submit fields of each."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "method": values.get("method", "get").lower(),
                    "action": values.get("action", ""),
                    "fields": {},
                    "buttons": 0,
                }
            )
        elif self.forms and tag == "input" and values.get("type") == "hidden":
            self.forms[-1]["fields"][values.get("name", "")] = values.get("value", "")
        elif self.forms and tag == "button":
            self.forms[-1]["buttons"] += 1


def post_forms(client: FlaskClient, path: str) -> list[dict[str, Any]]:
    """The POST forms on the page at `path` (the GET also sets the session cookie)."""
    page = client.get(path).get_data(as_text=True)
    return [form for form in Forms(page).forms if form["method"] == "post"]


def press_the_button(client: FlaskClient, path: str, action: str | None = None):
    """Open `path` and submit its POST form (the one posting to `action`, default `path`)."""
    wanted = action or path
    [form] = [form for form in post_forms(client, path) if form["action"] == wanted]
    return client.post(form["action"], data=form["fields"])


def contact_id(app: Flask, email: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Contact.id).where(Contact.email_key == email.casefold()))


def set_status(app: Flask, email: str, status: ContactStatus) -> None:
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email_key == email.casefold()))
        contact.status = status
        if status is not ContactStatus.PENDING:
            contact.confirmed_at = utcnow()
        db.session.commit()


def token_of(app: Flask, email: str) -> str:
    """The current preference/unsubscribe token of the contact with this address."""
    with app.app_context():
        return manage_token(
            db.session.scalar(sa.select(Contact).where(Contact.email_key == email.casefold()))
        )


def stored(app: Flask, contact_id: int) -> dict[str, Any]:
    """Everything stored about one contact, comparable with ==."""
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        organisation = contact.organisation
        consent: list[tuple[str, datetime, str]] = [
            (event.action.value, event.at, event.wording_version)
            for event in contact.consent_events
        ]
        return {
            "salutation": contact.salutation,
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "job_title": contact.job_title,
            "email": contact.email,
            "email_key": contact.email_key,
            "phone": contact.phone,
            "country": contact.country,
            "language": contact.language,
            "status": contact.status,
            "link_secret": contact.link_secret,
            "confirmed_at": contact.confirmed_at,
            "updated_at": contact.updated_at,
            "version": contact.version,
            "organisation": None
            if organisation is None
            else (
                organisation.name,
                organisation.country,
                organisation.stakeholder_type.value,
                organisation.website,
            ),
            "topics": sorted(topic.slug for topic in contact.topics),
            "consent": consent,
        }


def organisation_names(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(sa.select(Organisation.name)))


def row_count(app: Flask, table: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def consent_log(app: Flask) -> dict[str, list[tuple[str, str, str | None, str | None]]]:
    """Every contact's consent events (action, source, detail, privacy notice), by address."""
    with app.app_context():
        contacts = db.session.scalars(sa.select(Contact).order_by(Contact.id)).all()
        return {
            contact.email: [
                (event.action.value, event.source, event.detail, event.wording_version)
                for event in contact.consent_events
            ]
            for contact in contacts
        }


def statuses(app: Flask) -> dict[str, str]:
    with app.app_context():
        return {
            email: status.value
            for email, status in db.session.execute(sa.select(Contact.email, Contact.status))
        }
