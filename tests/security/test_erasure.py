"""Erasure must leave nothing of the person behind. A subscriber with a distinctive name is made
to appear everywhere the app keeps data, through its real pages: the sign-up and its mail,
directory searches by name followed by exports and bulk actions, an announcement delivered to
them, a test send, import files naming them. After an erasure (self-service or by staff),
neither the address nor the given or family name, in any case, spelling or encoding, is left
in the raw bytes of the SQLite database (with its -wal and -shm files) or of any file under
the test's folder (the instance folder, the Maildir outbox). Only the hash that stops imports
from adding the address again is kept."""

import email
import json
import re
import sqlite3
import unicodedata
import zipfile
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus, ErasedAddress
from jeg_contacts.contacts.services import email_hash, search_key
from jeg_contacts.extensions import db
from tests.conftest import (
    csrf_token,
    link_in,
    make_app,
    outbox_messages,
    post_signup,
    topic_ids,
)
from tests.imports.conftest import HEADER, csv_bytes, row, xlsx_bytes
from tests.imports.web_import import commit, finished, job_results, preview_url, upload
from tests.mailing.ui import create, post, run_worker, send_now

GIVEN = "Zénobie"
FAMILY = "Quaglieröd"
TYPED_ADDRESS = "Zenobie.Quaglierod@Example.org"  # as she typed it at sign-up
ADDRESS = "Zenobie.Quaglierod@example.org"  # as stored
BYSTANDER = "olga.petrova@example.org"
MAPPING = r'<select id="(column-\d+)" name="column-\d+">.*?<option value="([a-z_]*)" selected>'


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    # The outbox where it is by default: in the instance folder.
    return make_app(tmp_path, OUTBOX_DIR=str(tmp_path / "instance" / "outbox"))


def _secure_delete_off(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA secure_delete=OFF")


@pytest.fixture(autouse=True)
def sqlite_built_without_secure_delete() -> Iterator[None]:
    """Debian builds SQLite with SECURE_DELETE on; most others (python.org, Homebrew) do not.
    Every connection starts with it off here, as there: the app must turn it on itself."""
    event.listen(Engine, "connect", _secure_delete_off, insert=True)
    yield
    event.remove(Engine, "connect", _secure_delete_off)


# --- Looking for the person in raw bytes ----------------------------------------------------


def spellings(value: str) -> set[str]:
    """`value` as it may be written down anywhere: as typed, lower-cased, case-folded, in
    composed and decomposed Unicode, without accents; and each as JSON escapes it."""
    forms = {value, value.lower(), value.upper(), value.casefold(), search_key(value)}
    forms |= {unicodedata.normalize(norm, form) for form in set(forms) for norm in ("NFC", "NFD")}
    forms |= {json.dumps(form)[1:-1] for form in set(forms)}  # "Z\u00e9nobie"
    return {form.casefold() for form in forms}


NEEDLES = spellings(GIVEN) | spellings(FAMILY) | spellings(TYPED_ADDRESS) | spellings(ADDRESS)


def readable_views(path: Path) -> list[str]:
    """The file's bytes as text, plus what they hide: a mail's decoded headers and parts
    (RFC 2047, quoted-printable, base64), a ZIP archive's (an XLSX file's) members."""
    data = path.read_bytes()
    views = [data.decode("utf-8", "replace"), data.decode("latin-1")]
    if path.parent.name in ("new", "cur", "tmp"):
        message = email.message_from_bytes(data, policy=policy.default)
        views.extend(str(value) for value in message.values())
        for part in message.walk():
            if not part.is_multipart():
                views.append(str(part.get_content()))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            views.extend(
                archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
            )
    return views


def traces(root: Path) -> dict[str, set[str]]:
    """Every file under `root` (the database, its -wal and -shm files, the instance folder,
    the outbox) that holds one of the person's spellings, with those found."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        texts = [view.casefold() for view in readable_views(path)]
        hits = {needle for needle in NEEDLES if any(needle in text for text in texts)}
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


# --- Making the person appear everywhere ------------------------------------------------------


def confirm_by_link(client: FlaskClient, path: str) -> None:
    """Open a confirmation link, and press the button if the page asks for one."""
    page = client.get(path)
    assert page.status_code == 200
    form = re.search(r'<form[^>]*method="post"[^>]*action="([^"]*/confirm/[^"]*)"', page.text)
    if form and not form.group(1).endswith("/resend"):
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        client.post(form.group(1), data={"csrf_token": token.group(1)} if token else {})


def contact_id_of(app: Flask, address: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Contact.id).where(Contact.email_key == address.lower()))


def sign_up_and_confirm(app: Flask, **fields: str) -> None:
    client = app.test_client()
    assert post_signup(client, app, **fields).status_code == 302
    confirm_by_link(client, link_in(outbox_messages(app)[-1], "/confirm/"))


def make_the_person_appear_everywhere(app: Flask, staff: FlaskClient) -> int:
    sign_up_and_confirm(
        app,
        given_name=GIVEN,
        family_name=FAMILY,
        email=TYPED_ADDRESS,
        organisation_name="Hydrometeorological Service",
        job_title="Dam safety engineer",
        phone="+370 5 111 2222",
    )
    sign_up_and_confirm(app, given_name="Olga", family_name="Petrova", email=BYSTANDER)
    person = contact_id_of(app, ADDRESS)
    # She asks for her preferences link again (a mail, and a per-address counter).
    client = app.test_client()
    client.post(
        "/new-link", data={"csrf_token": csrf_token(client, "/new-link"), "email": TYPED_ADDRESS}
    )

    # The secretariat looks her up by name, as typed (without accents, in lower case), then
    # exports and changes in bulk what that search found.
    for query in ("zenobie", FAMILY, f"{GIVEN} {FAMILY}"):
        listing = staff.get(f"/admin/contacts?q={quote(query)}")
        assert listing.status_code == 200 and ADDRESS in listing.text
    for export_format, query in (("csv", "zenobie"), ("xlsx", FAMILY), ("jsonl", GIVEN.upper())):
        url = f"/admin/exports/download?format={export_format}&q={quote(query)}"
        with staff.get(url) as export:
            assert export.status_code == 200
            assert export.get_data()
    [terminals] = topic_ids(app, "oil-terminals")
    search = f"q={quote(f'{FAMILY.lower()} {GIVEN}')}"
    bulk = staff.post(
        f"/admin/contacts/bulk?{search}",
        data={
            "csrf_token": csrf_token(staff, f"/admin/contacts/bulk?{search}"),
            "action": "add_topic",
            "topic_id": str(terminals),
            "confirmed_count": "1",
        },
    )
    assert bulk.status_code == 302

    # An announcement goes out to her (and to the bystander), and a test of it to her address.
    announcement = create(staff, body_en="Dear {{ given_name }} {{ family_name }}, welcome.")
    assert send_now(staff, announcement).status_code == 302
    run_worker(app)
    url = f"/admin/announcements/{announcement}/test"
    post(
        staff,
        url,
        {"email": ADDRESS, "language": "en"},
        token_from=f"/admin/announcements/{announcement}",
    )

    # Two import files name her: one imported (its file is deleted, its preview and report
    # stay), one still waiting for its import.
    basis = "Listed as national focal points at the 2025 meeting."
    imported = preview_url(
        upload(
            staff,
            csv_bytes([row(ADDRESS.upper(), GIVEN, FAMILY), row("newcomer@example.org", "Ny")]),
            "focal-points.csv",
        )
    )
    settings = staff.get(imported).text
    form = {
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', settings)[1],
        **dict(re.findall(MAPPING, settings, re.S)),
        "encoding": "auto",
        "delimiter": "auto",
        "status": "active",
        "basis": basis,
        "existing": "skip",
        "default_language": "en",
        "default_type": "",
    }
    staff.post(imported, data=form)
    finished(staff, imported)
    commit(staff, imported)
    waiting = preview_url(
        upload(
            staff,
            csv_bytes(
                [
                    row(ADDRESS, GIVEN, FAMILY),
                    row(ADDRESS.lower(), f"{GIVEN} again", FAMILY),  # a duplicate: rejected
                    row("not an address", GIVEN, FAMILY),  # rejected, in the report
                ]
            ),
            f"{FAMILY}.csv",
        )
    )
    assert "rejected" in staff.get(waiting).text
    return person


def erase_by_self_service(app: Flask, staff: FlaskClient, contact_id: int) -> None:
    with app.app_context():
        token = manage_token(db.session.get(Contact, contact_id))
    client = app.test_client()
    url = f"/preferences/{token}/erase"
    assert client.post(url, data={"csrf_token": csrf_token(client, url)}).status_code == 200


def erase_by_staff(app: Flask, staff: FlaskClient, contact_id: int) -> None:
    url = f"/admin/contacts/{contact_id}/erase"
    response = staff.post(url, data={"csrf_token": csrf_token(staff, url), "confirm": "y"})
    assert response.status_code == 302


@pytest.mark.parametrize("erase", [erase_by_self_service, erase_by_staff])
def test_erasure_leaves_no_trace_of_the_person_in_any_file_the_app_keeps(
    app, admin_client, tmp_path, erase
):
    person = make_the_person_appear_everywhere(app, admin_client)
    before = traces(tmp_path)
    # Otherwise the test could pass without erasing anything. (On PostgreSQL the database's
    # files are the server's: the folder holds the instance only.)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        assert any(name.endswith(("test.db", "test.db-wal")) for name in before), before
    assert any(name.startswith("instance/outbox/") for name in before), before
    assert any(name.startswith("instance/imports/") for name in before), before
    assert {needle for hits in before.values() for needle in hits} >= {
        GIVEN.casefold(),
        FAMILY.casefold(),
        ADDRESS.casefold(),
        "zenobie",
        "quaglierod",
    }
    bystander_mail = [m for m in outbox_messages(app) if BYSTANDER in str(m["To"])]
    assert bystander_mail

    erase(app, admin_client, person)

    left = traces(tmp_path)
    assert left == {}, "\n".join(f"{name}: {sorted(hits)}" for name, hits in left.items())
    with app.app_context():
        contact = db.session.get(Contact, person)
        assert contact.status is ContactStatus.ERASED
        # The one thing kept: the hash that stops an import from adding her again.
        assert db.session.get(ErasedAddress, email_hash(ADDRESS)) is not None
    # Nobody else lost anything: the bystander's mail is still in the outbox.
    assert len([m for m in outbox_messages(app) if BYSTANDER in str(m["To"])]) == len(
        bystander_mail
    )


def url_token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_erasure_deletes_the_uploads_holding_the_address_and_only_those(app, admin_client):
    sign_up_and_confirm(app, given_name=GIVEN, family_name=FAMILY, email=TYPED_ADDRESS)
    person = contact_id_of(app, ADDRESS)
    header = [*HEADER, "Notes"]
    # Her address only in a column that is not imported: no preview or report shows it, the
    # file itself holds it.
    with_her = [[*row("ana@example.org"), f"Assistant: {ADDRESS.lower()}"]]
    without_her = [[*row("ana@example.org"), "Assistant: bo@example.org"]]
    uploaded = {
        name: preview_url(upload(admin_client, content, name))
        for name, content in (
            ("hers.csv", csv_bytes(with_her, header=header)),
            ("hers.xlsx", xlsx_bytes(with_her, header=header)),
            ("other.csv", csv_bytes(without_her, header=header)),
            ("other.xlsx", xlsx_bytes(without_her, header=header)),
        )
    }
    preview = Path(app.instance_path, "imports", uploaded["hers.xlsx"].rsplit("/", 1)[1])
    assert ADDRESS.lower() not in json.dumps(job_results(app, preview.name))

    erase_by_staff(app, admin_client, person)

    kept = {name for name, url in uploaded.items() if admin_client.get(url).status_code == 200}
    assert kept == {"other.csv", "other.xlsx"}
    assert job_results(app, preview.name) == []
    assert job_results(app, url_token(uploaded["hers.csv"])) == []
    assert job_results(app, url_token(uploaded["other.csv"]))
    # Importing her again is refused: the hash is kept.
    again = preview_url(upload(admin_client, csv_bytes([row(ADDRESS, GIVEN, FAMILY)]), "again.csv"))
    assert "cannot be imported again" in admin_client.get(again).text
