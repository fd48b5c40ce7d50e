"""A small, known community to count on the dashboard."""

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from jeg_contacts.contacts.models import (
    Contact,
    ContactStatus,
    Organisation,
    StakeholderType,
    Topic,
)
from jeg_contacts.contacts.services import new_link_secret, normalise_organisation_name
from jeg_contacts.extensions import db, utcnow


def add_organisation(name: str, kind: StakeholderType, country: str = "DE") -> int:
    organisation = Organisation(
        name=name,
        normalised_name=normalise_organisation_name(name),
        stakeholder_type=kind,
        country=country,
    )
    db.session.add(organisation)
    db.session.flush()
    return organisation.id


def add_contact(
    email: str,
    organisation_id: int | None,
    *,
    status: ContactStatus = ContactStatus.ACTIVE,
    country: str | None = "DE",
    language: str = "en",
    topics: Sequence[str] = ("pipelines",),
    created_at: datetime | None = None,
) -> Contact:
    contact = Contact(
        given_name="Test",
        family_name=email.split("@")[0],
        email=email,
        email_key=email.casefold(),
        country=country,
        language=language,
        organisation_id=organisation_id,
        status=status,
        link_secret=new_link_secret(),
        created_at=created_at or utcnow() - timedelta(days=100),
        topics=list(db.session.scalars(sa.select(Topic).where(Topic.slug.in_(topics)))),
    )
    db.session.add(contact)
    return contact


def known_community(app: Flask) -> None:
    """Seven contacts: five active (three types, three countries, two languages), one pending,
    one unsubscribed; two signed up in the last 30 days."""
    with app.app_context():
        ministry = add_organisation("Umweltbundesamt", StakeholderType.NATIONAL_AUTHORITY)
        icpdr = add_organisation(
            "International Commission for the Protection of the Danube River",
            StakeholderType.RIVER_BASIN_COMMISSION,
            "AT",
        )
        terminal = add_organisation("Danubia Oil Terminal", StakeholderType.OPERATOR, "RO")
        add_contact("a@uba.example", ministry, topics=("pipelines", "general-news"))
        add_contact("b@uba.example", ministry, topics=("general-news",))
        add_contact("c@icpdr.example", icpdr, country="AT", language="fr", topics=("checklists",))
        add_contact(
            "d@terminal.example",
            terminal,
            country="RO",
            language="ru",
            topics=("oil-terminals", "general-news"),
            created_at=utcnow() - timedelta(days=3),
        )
        add_contact("e@terminal.example", terminal, country="RO", topics=("oil-terminals",))
        add_contact(
            "f@uba.example",
            ministry,
            status=ContactStatus.PENDING,
            topics=("pipelines",),
            created_at=utcnow() - timedelta(days=1),
        )
        add_contact(
            "g@uba.example", ministry, status=ContactStatus.UNSUBSCRIBED, topics=("pipelines",)
        )
        db.session.commit()
