"""Export, then import into an empty database: the same contacts, topics and organisations."""

import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from jeg_contacts.audiences.services import ContactFilter
from jeg_contacts.contacts.models import Contact, ContactStatus, Organisation
from jeg_contacts.exports import services, writers
from jeg_contacts.extensions import db
from tests.conftest import make_app
from tests.directory.conftest import make_contact
from tests.imports.conftest import BASIS, run_import

FIELDS = (
    "salutation", "given_name", "family_name", "job_title", "email", "phone", "country",
    "language", "status",
)  # fmt: skip


def directory(app) -> dict[str, dict]:
    """Every non-erased contact as plain values, organisation and topics included."""
    with app.app_context():
        contacts = db.session.scalars(sa.select(Contact)).all()
        return {
            contact.email: {
                **{name: getattr(contact, name) for name in FIELDS},
                "organisation": (
                    contact.organisation.name,
                    contact.organisation.stakeholder_type.value,
                    contact.organisation.country,
                    contact.organisation.website,
                ),
                "topics": [topic.slug for topic in contact.topics],
            }
            for contact in contacts
            if contact.email
        }


def organisations(app) -> set[tuple]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(
                Organisation.name,
                Organisation.normalised_name,
                Organisation.stakeholder_type,
                Organisation.country,
                Organisation.website,
            )
        )
        return {tuple(row) for row in rows}


def empty_app(tmp_path: Path):
    """A second application with a database of its own: topics only."""
    (tmp_path / "empty").mkdir()
    return make_app(tmp_path / "empty")


@pytest.fixture
def source(app):
    """A directory with the awkward cases: scripts, commas, quotes, formulas, statuses."""
    people = [
        dict(given_name="Zoë", family_name="Müller", email="Zoe.Mueller@example.org",
             topics=("pipelines", "response-exercises")),
        dict(given_name="Ольга", family_name="Иванова", email="olga@mchs.example.ru",
             organisation="МЧС России", organisation_country="RU", language="ru",
             stakeholder_type="national_authority", topics=("tailings-management-facilities",)),
        dict(given_name="Jean", family_name="Dupont, fils", email="jean@example.fr",
             organisation='Agence "Eau; Rhône"', organisation_country="FR", language="fr",
             stakeholder_type="river_basin_commission", status="unsubscribed"),
        dict(given_name="Aida", family_name="Nurlanovna", email="aida@example.kz",
             organisation="Kazhydromet", organisation_country="KZ", country="UZ",
             stakeholder_type="university", status="bounced", topics=("general-news",)),
        dict(given_name="Pat", family_name="O'Neil", email="pat@example.ie",
             organisation="Umweltbundesamt", status="pending"),
        dict(email="gone@example.org", status="erased"),
    ]  # fmt: skip
    for person in people:
        make_contact(app, **person)
    with app.app_context():
        pat = db.session.scalar(sa.select(Contact).where(Contact.email == "pat@example.ie"))
        pat.salutation, pat.job_title, pat.phone = "prof", "=Head, -Risk- @unit", "+353 1 234 5678"
        pat.organisation.website = "https://www.umweltbundesamt.de"
        db.session.commit()
    return app


@pytest.mark.parametrize("format_key", ["csv", "excel-csv", "xlsx"])
def test_export_then_import_into_an_empty_database_gives_the_same_directory(
    source, tmp_path, format_key
):
    with source.test_request_context():
        export = services.parse_export(
            ContactFilter(), format_key=format_key, columns=list(services.COLUMNS)
        )
        out = io.BytesIO()
        writers.write_export(export, out)
    path = Path(tmp_path / f"export.{export.format.extension}")
    path.write_bytes(out.getvalue())
    target = empty_app(tmp_path)

    summary = run_import(target, path, status=ContactStatus.ACTIVE, basis=BASIS)

    assert summary.rows == 5
    assert directory(target) == directory(source)
    assert organisations(target) == organisations(source)
    assert "gone@example.org" not in directory(target)


def test_status_of_the_import_does_not_override_the_file(source, tmp_path):
    with source.test_request_context():
        out = io.BytesIO()
        writers.write_export(services.parse_export(ContactFilter(), format_key="csv"), out)
    path = tmp_path / "export.csv"
    path.write_bytes(out.getvalue())
    target = empty_app(tmp_path)

    run_import(target, path, status=ContactStatus.ACTIVE, basis=BASIS)

    statuses = {email: values["status"].value for email, values in directory(target).items()}
    assert statuses == {
        "Zoe.Mueller@example.org": "active",
        "olga@mchs.example.ru": "active",
        "jean@example.fr": "unsubscribed",
        "aida@example.kz": "bounced",
        "pat@example.ie": "pending",
    }
