"""Importing from the back office: upload, check (dry run), import, report; hostile files."""

import csv
import io
import os

import pytest

from jeg_contacts.exports import xlsx
from tests.conftest import (
    audit_entries,
    csrf_token,
    make_app,
    outbox_messages,
    staff_client,
    topic_ids,
)
from tests.directory.conftest import make_contact
from tests.imports.conftest import (
    HEADER,
    contacts_by_email,
    count_contacts,
    csv_bytes,
    row,
    xlsx_bytes,
)
from tests.imports.web_import import commit, preview_url, settings, upload


def test_viewers_cannot_import(app, viewer_client):
    assert viewer_client.get("/admin/imports").status_code == 403


def test_editor_uploads_checks_and_imports_a_file(app, editor_client):
    content = csv_bytes([row("ana@example.org"), row("bo@example.org", "Bo", "Berg")])

    url = preview_url(upload(editor_client, content))
    page = editor_client.get(url).get_data(as_text=True)

    assert "read as CSV, UTF-8, comma-separated · 2 rows" in page
    assert '<option value="email" selected>Email</option>' in page
    assert "<strong>2</strong> to add" in page
    assert count_contacts(app) == 0  # the dry run writes nothing

    done = commit(editor_client, url)
    assert done.status_code == 302
    result = editor_client.get(done.headers["Location"]).get_data(as_text=True)
    assert "contacts.csv is imported" in result
    assert "Added <strong>2</strong> contacts as pending" in result
    assert "Confirmation emails: 2 sent" in result
    contacts = contacts_by_email(app)
    assert set(contacts) == {"ana@example.org", "bo@example.org"}
    assert contacts["bo@example.org"].consent_events[0].source == (
        "imported by editor@unece.test from contacts.csv"
    )
    [entry] = audit_entries(app, "contacts.imported")
    assert entry.actor == "editor@unece.test"
    assert entry.changes["create"] == 2


def test_the_uploaded_file_is_deleted_once_imported(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    token = url.rsplit("/", 1)[1]
    stored = os.path.join(app.instance_path, "imports", token, "upload")
    assert os.path.exists(stored)

    commit(editor_client, url)

    assert not os.path.exists(stored)


def test_mapping_and_defaults_can_be_changed_before_importing(app, editor_client):
    content = csv_bytes(
        [["ana@example.org", "Ana Silva", "Umweltbundesamt", "DE"]],
        header=["Courriel", "Nom complet", "Organisme", "Pays"],
    )
    url = preview_url(upload(editor_client, content))
    page = editor_client.get(url).get_data(as_text=True)
    assert "Choose the column with the types of organisation, or one type for every row." in page
    [pipelines] = topic_ids(app, "pipelines")

    response = settings(
        editor_client,
        url,
        default_type="national_authority",
        default_topics=str(pipelines),
        default_language="fr",
    )

    page = editor_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<strong>1</strong> to add" in page
    commit(editor_client, url)
    ana = contacts_by_email(app)["ana@example.org"]
    assert (ana.given_name, ana.family_name, ana.language) == ("Ana", "Silva", "fr")
    assert [topic.slug for topic in ana.topics] == ["pipelines"]


def test_rejected_rows_can_be_downloaded_with_their_reasons(app, editor_client):
    content = csv_bytes([row("ana@example.org"), row("not-an-address"), row("=1+1@x.org")])
    url = preview_url(upload(editor_client, content))
    page = editor_client.get(url).get_data(as_text=True)
    assert "<strong>2</strong> rejected" in page

    with editor_client.get(url + "/rejected.csv") as report:
        assert report.status_code == 200
        assert report.headers["Cache-Control"] == "no-store"
        rows = list(csv.reader(io.StringIO(report.data.decode("utf-8-sig"))))
    assert rows[0] == ["Row", "Problems", *csv_bytes([]).decode().split("\r\n")[0].split(",")]
    assert rows[1][0] == "3"
    assert rows[1][1].startswith("Email: Enter a valid email address")
    assert rows[2][2] == "'=1+1@x.org"  # the report is itself neutralised


def test_a_preview_that_no_longer_holds_is_shown_again_instead_of_importing(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    preview = editor_client.get(url).get_data(as_text=True)
    make_contact(app, email="ana@example.org")

    commit(editor_client, url, preview)

    page = editor_client.get(url).get_data(as_text=True)
    assert "The directory changed since this check" in page
    assert "<strong>1</strong> already in the directory, skipped" in page
    assert count_contacts(app) == 1


def test_pending_imports_email_a_confirmation_link(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    settings(editor_client, url, status="pending")

    commit(editor_client, url)

    [message] = outbox_messages(app)
    assert message["To"].addresses[0].addr_spec == "ana@example.org"
    assert contacts_by_email(app)["ana@example.org"].status.value == "pending"


def test_too_many_pending_contacts_are_refused_before_anything_is_written(tmp_path):
    app = make_app(tmp_path, IMPORT_MAX_PENDING=1)
    client = staff_client(app, "editor")
    url = preview_url(upload(client, csv_bytes([row("a@example.org"), row("b@example.org")])))
    settings(client, url, status="pending")

    page = client.get(url).get_data(as_text=True)

    assert "at most 1 per import, and this file has 2" in page
    assert "/commit" not in page
    assert count_contacts(app) == 0


def test_discarding_an_upload_deletes_it(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    token = csrf_token(editor_client, url)

    response = editor_client.post(url + "/discard", data={"csrf_token": token})

    assert response.status_code == 302
    assert editor_client.get(url).status_code == 404


def test_another_editor_cannot_open_someone_elses_upload(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    other = staff_client(app, "admin")

    assert other.get(url).status_code == 404
    assert other.get(url + "/rejected.csv").status_code == 404


UNREADABLE_FILES = {
    "empty file": (b"", "empty.csv", "The file is empty."),
    "only blank lines": (b"\r\n\r\n ,, \r\n", "blank.csv", "The file is empty."),
    "binary garbage": (bytes(range(256)) * 64, "garbage.csv", "it contains binary data"),
    "random bytes": (os.urandom(8192), "random.csv", "it contains binary data"),
    "old excel": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.xls", ".xls"),
    "damaged xlsx": (b"PK\x03\x04" + b"\x00" * 100, "broken.xlsx", "could not be opened"),
    "header only": (b"Email,Name\r\n", "header.csv", "no contacts below it"),
    "10 MB single cell": (
        csv_bytes([row("a@example.org")]) + b'b@example.org,"' + b"x" * (10 * 1024 * 1024) + b'"',
        "huge.csv",
        "A row reaching line 3 is longer than 1,048,576 characters",
    ),
    "a cell longer than the csv module reads": (
        csv_bytes([row("a@example.org")]) + b'b@example.org,"' + b"x" * 200_000 + b'"',
        "huge.csv",
        "A cell starting on line 3 is longer than 131,072 characters",
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE_FILES))
def test_unreadable_files_are_refused_with_a_clear_message(app, editor_client, case):
    content, name, message = UNREADABLE_FILES[case]

    response = upload(editor_client, content, name)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count_contacts(app) == 0


BAD_ROWS = {
    "ragged row": (
        csv_bytes([row("ana@example.org"), [*row("bo@example.org"), "surplus", "cells"]]),
        "The row has 9 cells where the header has 7 columns",
    ),
    "short row": (
        csv_bytes([row("ana@example.org"), ["bo@example.org", "Bo"]]),
        "The row has 2 cells where the header has 7 columns",
    ),
    "unclosed quote": (
        csv_bytes([row("ana@example.org")]) + b'"bo@example.org,Bo,Berg\r\nx,y\r\n',
        "a quote (&#34;) opened in it is probably never closed",
    ),
    "duplicate rows": (
        csv_bytes([row("ana@example.org"), row("ANA@example.org")]),
        "Same email address as row 2; only the first is imported.",
    ),
    "formula cells": (
        csv_bytes([row("ana@example.org"), row("bo@example.org", "=HYPERLINK(&quot;x&quot;)")]),
        "is a spreadsheet formula",
    ),
    "formula in a workbook": (
        xlsx_bytes([row("ana@example.org"), row("bo@example.org", "=CONCAT(A2,B2)")]),
        "is a spreadsheet formula (=CONCAT(A2,B2))",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_rows_are_reported_and_change_nothing(app, editor_client, case):
    content, message = BAD_ROWS[case]
    name = "contacts.xlsx" if content.startswith(b"PK") else "contacts.csv"

    url = preview_url(upload(editor_client, content, name))
    page = editor_client.get(url).get_data(as_text=True)

    assert message in page
    assert "<strong>1</strong> to add" in page
    assert "<strong>1</strong> rejected" in page
    commit(editor_client, url)
    assert set(contacts_by_email(app)) == {"ana@example.org"}


def test_a_file_over_the_size_limit_is_refused_with_a_message(tmp_path):
    app = make_app(tmp_path, IMPORT_MAX_BYTES=1000)
    client = staff_client(app, "editor")

    response = upload(client, csv_bytes([row(f"p{i}@example.org") for i in range(100)]))

    assert response.status_code == 413
    assert "the most that can be imported at once" in response.get_data(as_text=True)


def test_a_request_over_the_server_limit_gets_the_same_message(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=200 * 1024)
    client = staff_client(app, "editor")

    response = upload(client, b"Email\r\n" + b"a@example.org\r\n" * 20_000)

    assert response.status_code == 413
    assert "The file is larger than" in response.get_data(as_text=True)


def test_xlsx_files_are_imported_too(app, editor_client):
    content = xlsx_bytes([row("ana@example.org")])

    url = preview_url(upload(editor_client, content, "contacts.xlsx"))
    page = editor_client.get(url).get_data(as_text=True)

    assert "Excel workbook, sheet “Contacts”" in page
    assert "<strong>1</strong> to add" in page


def test_choosing_the_wrong_encoding_says_so(app, editor_client):
    content = csv_bytes([row("ana@example.org", "Ольга", "Иванова")], encoding="cp1251")

    response = upload(editor_client, content, encoding="utf-8")

    assert response.status_code == 400
    assert "The file is not in UTF-8" in response.get_data(as_text=True)
    assert "Windows-1251 for Cyrillic" in response.get_data(as_text=True)


def test_a_very_long_cell_in_a_workbook_rejects_its_row_only(app, editor_client, monkeypatch):
    # Excel and openpyxl stop at 32,767 characters; a hand-made file need not. (A row of
    # more than a megabyte refuses the whole file: tests/security/test_uploads.py.)
    monkeypatch.setattr(xlsx, "MAX_CELL_CHARS", 20_000_000)
    buffer = io.BytesIO()
    sheet = xlsx.SheetWriter(buffer, HEADER, [10] * len(HEADER), "Contacts")
    sheet.write_row(row("ana@example.org"))
    sheet.write_row(row("bo@example.org", "x" * 100_000))
    sheet.close()

    url = preview_url(upload(editor_client, buffer.getvalue(), "huge.xlsx"))
    page = editor_client.get(url).get_data(as_text=True)

    assert "holds 100,000 characters; at most 1,000 are read" in page
    commit(editor_client, url)
    assert set(contacts_by_email(app)) == {"ana@example.org"}
