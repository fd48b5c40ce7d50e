"""The issue's journey in a real browser: export a filtered list as XLSX, edit it in a
spreadsheet, import it back."""

import re
import time

from openpyxl import load_workbook
from playwright.sync_api import expect

from jeg_contacts.imports.services import Importer
from tests.conftest import STAFF_PASSWORD, create_staff
from tests.directory.conftest import make_contact
from tests.imports.conftest import contacts_by_email


def test_export_a_filtered_list_as_xlsx_edit_it_and_import_it_back(
    live_server, page, tmp_path, monkeypatch
):
    app = live_server.app
    # Checking two rows is instant: the import is slowed down so that its progress page,
    # which follows the job and then shows the result by itself, is seen at work.
    check_rows = Importer._chunk

    def slow_chunk(importer, rows):
        if importer.write:
            time.sleep(1.5)
        return check_rows(importer, rows)

    monkeypatch.setattr(Importer, "_chunk", slow_chunk)
    create_staff(app, "editor@unece.test", "editor")
    make_contact(app, given_name="Zoë", family_name="Müller", email="zoe@example.org")
    make_contact(app, given_name="Ivan", family_name="Petrov", organisation="Kazhydromet",
                 organisation_country="KZ", email="ivan@example.kz")  # fmt: skip

    page.goto(f"{live_server.url}/admin/login")
    page.get_by_label("Email").fill("editor@unece.test")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/admin/contacts?country=DE")
    page.get_by_role("link", name="Export this contact…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Export contacts")
    expect(page.get_by_role("status").first).to_contain_text("1 contact matches: country Germany")
    page.get_by_label("Excel workbook (.xlsx)").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download 1 contact").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.suffix == ".xlsx"

    workbook = load_workbook(path)
    sheet = workbook.active
    header = [cell.value for cell in sheet[1]]
    assert [cell.value for cell in sheet[2]][header.index("Email")] == "zoe@example.org"
    sheet.cell(row=2, column=header.index("Job title") + 1, value="Head of unit")
    new_row = [cell.value for cell in sheet[2]]
    new_row[header.index("Email")] = "anna@example.org"
    new_row[header.index("Given name")] = "Anna"
    sheet.append(new_row)
    workbook.save(path)

    page.goto(f"{live_server.url}/admin/contacts")
    page.get_by_role("link", name="Import contacts").click()
    page.get_by_label("CSV or Excel (.xlsx) file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and check").click()
    # The check runs in the background; its page turns into the preview once it is done.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Import jeg-contacts-")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("1 to add")
    expect(preview).to_contain_text("1 already in the directory, skipped")

    page.get_by_label(re.compile("^Update them with the file")).check()
    # Exported from this directory, where Anna's row was copied from a confirmed contact.
    page.get_by_label(re.compile("^Active, because they agreed")).check()
    page.get_by_label(re.compile("^Why the people on this list agreed")).fill(
        "Copied from contacts who confirmed in this directory."
    )
    page.get_by_role("button", name="Check again with these settings").click()
    expect(preview).to_contain_text("1 to update")
    expect(preview).to_contain_text("Changes job title")
    page.get_by_role("button", name="Import: add 1, update 1").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Importing jeg-contacts-")
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(page.locator("#job-text")).to_contain_text("rows")
    expect(page.get_by_role("heading", level=1)).to_contain_text("is imported")
    expect(page.get_by_role("status").first).to_contain_text("Added 1 contact as active")
    contacts = contacts_by_email(app)
    assert contacts["zoe@example.org"].job_title == "Head of unit"
    assert contacts["anna@example.org"].organisation.name == "Umweltbundesamt"
    assert contacts["ivan@example.kz"].job_title is None
