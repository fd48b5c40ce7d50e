"""Building organisations and contacts directly in the database for these tests."""

import secrets

from flask import Flask

from jeg_contacts.contacts.models import (
    Contact,
    ContactStatus,
    Organisation,
    StakeholderType,
    search_key,
)
from jeg_contacts.extensions import db


def add_organisation(
    app: Flask,
    name: str,
    stakeholder_type: str = "national_authority",
    country: str | None = "DE",
    website: str | None = None,
) -> int:
    with app.app_context():
        organisation = Organisation(
            name=name,
            normalised_name=search_key(name),
            stakeholder_type=StakeholderType(stakeholder_type),
            country=country,
            website=website,
        )
        db.session.add(organisation)
        db.session.commit()
        return organisation.id


def add_contact(
    app: Flask,
    organisation_id: int | None,
    given_name: str,
    family_name: str,
    status: str = "active",
) -> int:
    email = f"{search_key(given_name)}.{search_key(family_name)}@example.org".replace(" ", "-")
    with app.app_context():
        contact = Contact(
            given_name=given_name,
            family_name=family_name,
            email=email,
            email_key=email,
            organisation_id=organisation_id,
            status=ContactStatus(status),
            link_secret=secrets.token_urlsafe(16),
        )
        db.session.add(contact)
        db.session.commit()
        return contact.id


def get_organisation(app: Flask, organisation_id: int) -> Organisation | None:
    with app.app_context():
        organisation = db.session.get(Organisation, organisation_id)
        db.session.expunge_all()
        return organisation
