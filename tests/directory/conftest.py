"""Helpers for the directory tests: contacts made through the same service the back office uses."""

import itertools
from datetime import datetime

import sqlalchemy as sa
from flask import Flask

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.directory.services import ContactData, add_contact
from jeg_contacts.extensions import db
from jeg_contacts.privacy.services import erase_contact
from tests.conftest import topic_ids

_numbers = itertools.count(1)


def make_contact(
    app: Flask,
    *,
    given_name: str = "Ana",
    family_name: str = "Silva",
    email: str | None = None,
    organisation: str = "Umweltbundesamt",
    stakeholder_type: str = "national_authority",
    organisation_country: str = "DE",
    country: str | None = None,
    language: str = "en",
    topics: tuple[str, ...] = ("pipelines",),
    status: str = "active",
    created_at: datetime | None = None,
) -> int:
    """Add a contact as the secretariat would (then force status/date); returns its id."""
    number = next(_numbers)
    with app.test_request_context():
        contact = add_contact(
            ContactData(
                organisation_name=organisation,
                stakeholder_type=stakeholder_type,
                organisation_country=organisation_country,
                given_name=given_name,
                family_name=family_name,
                language=language,
                country=country,
                topic_ids=topic_ids(app, *topics),
                email=email or f"contact{number}@example.org",
                status="active",
            ),
            "setup@example.org",
            basis="Made for the test.",
        )
        if status == "erased":
            erase_contact(contact, "test")
        else:
            contact.status = ContactStatus(status)
        if created_at is not None:
            contact.created_at = created_at
        db.session.commit()
        return contact.id


def topic_id(app: Flask, slug: str) -> int:
    [found] = topic_ids(app, slug)
    return found


def load_contact(app: Flask, contact_id: int) -> Contact:
    """A fresh copy of the contact, with organisation and topics loaded."""
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        _ = contact.organisation, list(contact.topics), list(contact.consent_events)
        db.session.expunge(contact)
        return contact


def audit_entries(app: Flask, **criteria: object) -> list[AuditEntry]:
    with app.app_context():
        query = sa.select(AuditEntry).filter_by(**criteria).order_by(AuditEntry.id)
        entries = list(db.session.scalars(query))
        for entry in entries:
            db.session.expunge(entry)
        return entries
