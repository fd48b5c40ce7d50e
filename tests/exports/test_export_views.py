"""Exporting from the back office: the form, the streamed download, the audit log."""

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from tests.conftest import audit_entries, topic_ids


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for url in ("/admin/exports", "/admin/exports/download?format=csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login")


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_may_export(app, people, role, request):
    client = request.getfixturevalue(f"{role}_client")

    page = client.get("/admin/exports")
    download = client.get("/admin/exports/download?format=csv")

    assert page.status_code == 200
    assert "<strong>3</strong> contacts match" in page.get_data(as_text=True)
    assert download.status_code == 200


def test_directory_links_to_an_export_of_its_current_filter(app, people, viewer_client):
    page = viewer_client.get("/admin/contacts?country=RU&sort=-signed_up").get_data(as_text=True)

    [link] = re.findall(r'href="(/admin/exports\?[^"]+)"', page)
    export_page = viewer_client.get(link.replace("&amp;", "&")).get_data(as_text=True)

    assert "country=RU" in link and "sort=-signed_up" in link
    assert "<strong>1</strong> contact matches: country Russia." in export_page
    assert '<option value="RU" selected>' in export_page
    assert '<input type="hidden" name="sort" value="-signed_up">' in export_page


def test_download_is_streamed_as_an_attachment_and_not_cached(app, people, viewer_client):
    response = viewer_client.get("/admin/exports/download?format=csv&country=DE")

    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="jeg-contacts-')
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["Email"] for row in rows] == ["zoe@example.org"]


def test_xlsx_download_opens_in_openpyxl(app, people, viewer_client):
    response = viewer_client.get(
        "/admin/exports/download?format=xlsx&columns_chosen=1&column=email&column=topics"
    )

    sheet = load_workbook(io.BytesIO(response.data)).active
    assert [cell.value for cell in sheet[1]] == ["Email", "Topics"]
    assert sheet.max_row == 4


def test_every_export_is_audited_with_who_filter_format_and_count(app, people, viewer_client):
    [pipelines] = topic_ids(app, "pipelines")

    viewer_client.get(f"/admin/exports/download?format=vcf&topic={pipelines}").get_data()

    [entry] = audit_entries(app, "contacts.exported")
    assert entry.actor == "viewer@unece.test"
    assert entry.user_id is not None
    assert entry.changes["rows"] == 2
    assert entry.changes["format"] == "vcf"
    assert entry.changes["filter"] == "topic “Pipeline safety”"
    assert entry.changes["criteria"] == {"topic": [str(pipelines)]}
    assert entry.changes["via"] == "back office"
    assert entry.summary == "Exported 2 contacts as vCard (.vcf) (back office)"


def test_nothing_to_export_is_said_and_not_audited(app, people, viewer_client):
    response = viewer_client.get("/admin/exports/download?format=csv&country=KZ")

    assert response.status_code == 302
    page = viewer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "No contact matches these filters, so there is nothing to export." in page
    assert "Nothing to download" in page
    assert audit_entries(app, "contacts.exported") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("format=pdf", "Choose a format"),
        ("format=csv&columns_chosen=1", "Choose at least one column to export."),
        ("format=csv&columns_chosen=1&column=password", "Unknown column"),
    ],
)
def test_impossible_choices_come_back_as_messages(app, people, viewer_client, query, message):
    response = viewer_client.get(f"/admin/exports/download?{query}", follow_redirects=True)

    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert audit_entries(app, "contacts.exported") == []


def test_export_page_keeps_the_chosen_format_and_columns(app, people, viewer_client):
    page = viewer_client.get(
        "/admin/exports?format=vcf&columns_chosen=1&column=email&delimiter=semicolon"
    ).get_data(as_text=True)

    assert 'id="format-vcf" value="vcf" aria-describedby="format-vcf-hint" checked' in page
    assert 'id="column-email" value="email" checked' in page
    assert 'id="column-phone" value="phone">' in page
    assert '<option value="semicolon" selected>' in page
