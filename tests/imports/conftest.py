"""Helpers for export and import tests: contacts, files and the import pipeline in one call."""

import csv
import io
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from openpyxl import Workbook

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from jeg_contacts.imports.mapping import ImportSettings, suggest_mapping
from jeg_contacts.imports.reading import open_table
from jeg_contacts.imports.services import Actor, Importer

# What staff state to import a list as active (tests that are not about consent).
BASIS = "Exported from our other directory, where each of them confirmed by email."

HEADER = [
    "Email",
    "Given name",
    "Family name",
    "Organisation",
    "Type of organisation",
    "Organisation country",
    "Topics",
]


def row(email: str, given: str = "Ana", family: str = "Silva", **overrides: str) -> list[str]:
    values = {
        "organisation": "Umweltbundesamt",
        "type": "National authority",
        "country": "DE",
        "topics": "pipelines",
    } | overrides
    return [
        email,
        given,
        family,
        values["organisation"],
        values["type"],
        values["country"],
        values["topics"],
    ]


def csv_bytes(rows: list[list[str]], *, header=HEADER, delimiter=",", encoding="utf-8") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]], *, header=HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Contacts"
    sheet.append(header)
    for values in rows:
        sheet.append(values)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def run_import(
    app: Flask,
    path: Path,
    *,
    write: bool = True,
    report: io.StringIO | None = None,
    **settings: object,
):
    """Import `path` as the command line does (one transaction); returns the summary."""
    with app.test_request_context():
        table = open_table(path)
        mapping = settings.pop("mapping", None) or suggest_mapping(table.header)
        summary = Importer(
            table,
            ImportSettings(mapping=tuple(mapping), **settings),
            file_name=path.name,
            actor=Actor(None, "tests"),
            write=write,
            report=report,
        ).run()
        db.session.commit()
        return summary


def contacts_by_email(app: Flask) -> dict[str, Contact]:
    """Every non-erased contact, with organisation and topics loaded, by address."""
    with app.app_context():
        contacts = db.session.scalars(
            sa.select(Contact).where(Contact.status != ContactStatus.ERASED)
        ).all()
        for contact in contacts:
            _ = contact.organisation, list(contact.topics), list(contact.consent_events)
            db.session.expunge(contact)
        return {contact.email: contact for contact in contacts}


def count_contacts(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Contact))
