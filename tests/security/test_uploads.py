"""Hostile uploads: zip bombs, lying ZIP directories, XML entities, endless rows and lines.

Every hostile file is built here. What reading one costs is measured where nothing can hide
it: `flask contacts import` runs as a child process, and the kernel reports its CPU time and
peak memory (os.wait4), compared with the same command reading a two-row file. Through the
web, the upload form and the background check must refuse the same files with a clear
message, within the same CPU budget, keeping nothing.
"""

import html
import os
import random
import re
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from tests.conftest import make_app, staff_client, subprocess_environment
from tests.imports.web_import import finished, page_url, post_file

ROOT = Path(__file__).resolve().parents[2]
# `flask`, reporting its own peak memory as it exits. The kernel's figure for a child
# (ru_maxrss) starts from its parent's high-water mark, which exec() carries over.
FLASK = [
    sys.executable,
    "-c",
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            print('peak-kB', line.split()[1], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "from flask.cli import main\n"
    "sys.argv[0] = 'flask'\n"
    "main()\n",
]
# The budget for refusing a bomb, and for how much the process may grow meanwhile.
CPU_SECONDS = 2.0
GROWTH_MB = 50
# A million blank rows are refused at the 200,000th: parsing those rows is work the row limit
# allows (about 1.5 s of CPU here, with the test's own polling), so their budget is the
# reading of 200,000 rows, not the bomb's. Reading all the rows, as before, took 4.1 s.
BLANK_ROWS_CPU_SECONDS = 3.0
# A child still reading after this long has failed anyway; it is killed, not waited for.
CHILD_TIMEOUT = 90

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
# Column names the import maps by themselves, so that a readable file is checked at once.
HEADER = (
    "Email", "Given name", "Family name", "Organisation", "Type of organisation",
    "Organisation country", "Topics",
)  # fmt: skip
SHEET_START = (
    f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">'
    + "".join(f'<c t="inlineStr"><is><t>{name}</t></is></c>' for name in HEADER)
    + "</row>"
).encode()
SHEET_END = b"</sheetData></worksheet>"
CONTACT_ROW = b'<row><c t="inlineStr"><is><t>ana@example.org</t></is></c></row>'
MB = 1024 * 1024


# --- Building hostile files ------------------------------------------------------------------


def workbook(
    path: Path,
    sheet: Iterable[bytes],
    *,
    strings: bytes | None = None,
    method: int = zipfile.ZIP_DEFLATED,
    extra_parts: int = 0,
) -> Path:
    """A workbook whose one sheet is the bytes of `sheet`, streamed into the archive."""
    relations = f'<Relationship Id="rId1" Type="{RELATIONS}/worksheet" Target="worksheets/s.xml"/>'
    if strings is not None:
        relations += (
            f'<Relationship Id="rId2" Type="{RELATIONS}/sharedStrings" Target="strings.xml"/>'
        )
    with zipfile.ZipFile(path, "w", method, compresslevel=9) as archive:
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{RELATIONS}"><sheets>'
            '<sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PACKAGE}">{relations}</Relationships>',
        )
        if strings is not None:
            archive.writestr("xl/strings.xml", strings)
        with archive.open("xl/worksheets/s.xml", "w", force_zip64=True) as out:
            for chunk in sheet:
                out.write(chunk)
        for number in range(extra_parts):
            archive.writestr(f"docProps/part{number}.xml", b"")
    return path


def repeated(block: bytes, total: int) -> Iterable[bytes]:
    """`block` over and over, about `total` bytes in all, a megabyte at a time."""
    chunk = block * max(1, MB // len(block))
    for _ in range(max(1, total // len(chunk))):
        yield chunk


def zip_bomb(path: Path, method: int = zipfile.ZIP_DEFLATED) -> Path:
    """96 MB of contact rows packed into a few hundred kilobytes, as in the issue."""
    return workbook(path, [SHEET_START, *repeated(CONTACT_ROW, 96 * MB), SHEET_END], method=method)


def lie_about_sizes(path: Path, part: str, unpacked: int, packed: int) -> Path:
    """Rewrite the ZIP directory's entry for `part` to declare these sizes."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length].decode() == part:
            struct.pack_into("<II", data, at + 20, packed, unpacked)
            path.write_bytes(bytes(data))
            return path
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{part} is not in {path}")


def lying_bomb(path: Path) -> Path:
    """A zip bomb whose directory declares 50 MB packed into 1 MB: sizes that pass a check of
    what the directory says, ratio and total alike."""
    zip_bomb(path)
    return lie_about_sizes(path, "xl/worksheets/s.xml", unpacked=50 * MB, packed=MB)


def blank_rows(path: Path, count: int = 1_000_000) -> Path:
    """A header, a million empty rows, then one contact."""

    def rows() -> Iterable[bytes]:
        yield SHEET_START
        for start in range(2, count + 2, 10_000):
            yield b"".join(b'<row r="%d"/>' % number for number in range(start, start + 10_000))
        yield b'<row r="%d">' % (count + 2) + CONTACT_ROW[5:]
        yield SHEET_END

    return workbook(path, rows())


def wide_rows(path: Path, count: int = 100_000) -> Path:
    """Rows with a value in the last column Excel has, XFD: padded, 16,384 cells each."""

    def rows() -> Iterable[bytes]:
        yield SHEET_START
        for start in range(2, count + 2, 10_000):
            yield b"".join(
                b'<row r="%d"><c r="XFD%d"><v>1</v></c></row>' % (number, number)
                for number in range(start, start + 10_000)
            )
        yield SHEET_END

    return workbook(path, rows())


def with_doctype(doctype: str, cell: str) -> list[bytes]:
    """A sheet with a document type declaration and `cell` as the first contact's email."""
    return [
        f'<?xml version="1.0"?><!DOCTYPE worksheet [{doctype}]>'.encode(),
        SHEET_START,
        f'<row r="2"><c t="inlineStr"><is><t>{cell}</t></is></c></row>'.encode(),
        SHEET_END,
    ]


BILLION_LAUGHS = '<!ENTITY lol0 "lol">' + "".join(
    f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, 10)
)


def billion_laughs(path: Path) -> Path:
    return workbook(path, with_doctype(BILLION_LAUGHS, "&lol9;"))


def endless_line(path: Path, size: int = 50 * MB) -> Path:
    """A CSV header, then one line of `size` bytes of one-letter cells."""
    with path.open("wb") as out:
        out.write(b"Email,Given name\n")
        for chunk in repeated(b"a,", size):
            out.write(chunk)
    return path


def only_delimiters(path: Path, size: int = 50 * MB) -> Path:
    """A CSV file of nothing but commas."""
    with path.open("wb") as out:
        for chunk in repeated(b",", size):
            out.write(chunk)
    return path


def late_bad_byte(path: Path, size: int = 60 * MB) -> Path:
    """Cyrillic text in Windows-1251 with, at its very end, a byte that code page lacks."""
    with path.open("wb") as out:
        out.write("Email,Имя\n".encode("cp1251"))
        for chunk in repeated("ana@example.org,Анна\n".encode("cp1251"), size):
            out.write(chunk)
        out.write(b"\x98\n")
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile file, built once for the module (some take a second to pack)."""
    folder = tmp_path_factory.mktemp("hostile")
    return {
        "zip bomb": zip_bomb(folder / "bomb.xlsx"),
        "lying directory": lying_bomb(folder / "lying.xlsx"),
        "bzip2 bomb": zip_bomb(folder / "bzip2.xlsx", method=zipfile.ZIP_BZIP2),
        "blank rows": blank_rows(folder / "blank.xlsx"),
        "wide rows": wide_rows(folder / "wide.xlsx"),
        "billion laughs": billion_laughs(folder / "laughs.xlsx"),
        "endless line": endless_line(folder / "line.csv"),
        "only delimiters": only_delimiters(folder / "commas.csv"),
        "late bad byte": late_bad_byte(folder / "cyrillic.csv"),
    }


# --- The command line, measured ----------------------------------------------------------------


@dataclass
class Run:
    exit_code: int
    cpu_seconds: float
    peak_mb: float
    output: str


# Updating existing contacts needs only an email column, so every row of a readable file is
# read (and rejected on its own line: the directory is empty).
IMPORT_OPTIONS = ("--dry-run", "--quiet", "--update-existing")


def run_import(app: Flask, path: Path, tmp_path: Path) -> Run:
    """`flask contacts import PATH --dry-run` as a child process, with what it cost."""
    log = tmp_path / f"{path.name}.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [*FLASK, "--app", "wsgi", "contacts", "import", str(path), *IMPORT_OPTIONS],
            env=subprocess_environment(app),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        watchdog = threading.Timer(CHILD_TIMEOUT, child.kill)
        watchdog.start()
        try:
            _pid, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace")
    peak = re.search(r"^peak-kB (\d+)$", output, re.M)
    return Run(
        exit_code=child.returncode,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_mb=int(peak[1]) / 1024 if peak else float("inf"),  # killed: it never said
        output=output,
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The same command reading a workbook of two contacts."""
    folder = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSTANCE_PATH", str(folder / "instance"))
        app = make_app(folder)
    path = workbook(folder / "two.xlsx", [SHEET_START, CONTACT_ROW * 2, SHEET_END])
    run = run_import(app, path, folder)
    assert run.exit_code == 0, run.output
    return run


REFUSALS = {
    "zip bomb": "zip bomb",
    "lying directory": "zip bomb",
    "bzip2 bomb": "could not be opened as an Excel workbook",
    "blank rows": "more than 200,000 rows, counting blank ones",
    "wide rows": "Row 2 has a value in column XFD, but at most 200 columns",
    "billion laughs": "document type declaration (DTD)",
    "endless line": "longer than 1,048,576 characters",
    "only delimiters": "longer than 1,048,576 characters",
    "late bad byte": "The file is not in Windows-1251 (Cyrillic): the byte 0x98 on line",
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_the_command_line_refuses_a_hostile_file_quickly_in_little_memory(
    app, tmp_path, hostile, baseline, kind
):
    run = run_import(app, hostile[kind], tmp_path)

    assert run.exit_code == 1, run.output
    assert REFUSALS[kind] in " ".join(run.output.split()), run.output
    assert "Traceback" not in run.output
    assert run.cpu_seconds - baseline.cpu_seconds < CPU_SECONDS, run
    assert run.peak_mb - baseline.peak_mb < GROWTH_MB, run


# --- Through the back office ---------------------------------------------------------------


def kept_uploads(app: Flask) -> list[Path]:
    folder = Path(app.instance_path) / "imports"
    return list(folder.iterdir()) if folder.is_dir() else []


def contact_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Contact))


@pytest.mark.parametrize("kind", ["zip bomb", "lying directory", "bzip2 bomb", "billion laughs"])
def test_the_upload_form_refuses_a_bomb_at_once_and_keeps_nothing(
    app, editor_client, hostile, kind
):
    started = time.process_time()
    response = post_file(editor_client, hostile[kind].read_bytes(), "contacts.xlsx")
    spent = time.process_time() - started

    assert response.status_code == 400
    page = " ".join(html.unescape(response.get_data(as_text=True)).split())
    assert "contacts.xlsx: The " in page
    assert REFUSALS[kind] in page
    assert spent < CPU_SECONDS
    assert kept_uploads(app) == []


def test_a_million_blank_rows_fail_the_check_with_a_clear_message(app, editor_client, hostile):
    started = time.process_time()
    response = post_file(editor_client, hostile["blank rows"].read_bytes(), "contacts.xlsx")
    url = page_url(response)
    status = finished(editor_client, url)
    spent = time.process_time() - started

    page = editor_client.get(url)
    assert status["state"] == "failed"
    assert page.status_code == 400
    assert REFUSALS["blank rows"] in " ".join(page.get_data(as_text=True).split())
    # The upload, the check in its thread, and the polling, all within the budget.
    assert spent < BLANK_ROWS_CPU_SECONDS
    assert contact_count(app) == 0


def test_blank_csv_rows_count_towards_the_row_limit(app, editor_client):
    content = b"Email,Given name\nana@example.org,Ana\n" + b",\n" * 200_001

    response = post_file(editor_client, content, "contacts.csv")

    assert response.status_code == 400
    assert REFUSALS["blank rows"] in " ".join(response.get_data(as_text=True).split())
    assert kept_uploads(app) == []


@pytest.mark.parametrize(
    "content",
    [
        b"Email,Given name\n" + b"a," * (4 * MB),
        b"," * (8 * MB),
    ],
    ids=["endless line", "only delimiters"],
)
def test_the_upload_form_refuses_a_csv_record_without_end(app, editor_client, content):
    response = post_file(editor_client, content, "contacts.csv")

    assert response.status_code == 400
    page = " ".join(response.get_data(as_text=True).split())
    assert "contacts.csv: A row reaching line" in page
    assert "is longer than 1,048,576 characters" in page
    assert kept_uploads(app) == []


def test_a_byte_of_the_wrong_encoding_far_into_a_csv_file_is_reported(app, editor_client):
    content = b"Email,Given name\n" + "ana@example.org,Zoë\n".encode() * 100_000 + b"x\xff\n"

    response = post_file(editor_client, content, "contacts.csv", encoding="utf-8")

    assert response.status_code == 400
    assert "contacts.csv: The file is not in UTF-8: the byte 0xFF on line 100,002 is" in (
        response.get_data(as_text=True)
    )


@pytest.mark.parametrize(
    "doctype, cell",
    [
        ('<!ENTITY email "ana@example.org">', "&email;"),
        (BILLION_LAUGHS, "&lol9;"),
        ('<!ENTITY secret SYSTEM "file://{secret}">', "&secret;"),
        ('<!ENTITY % remote SYSTEM "file://{secret}"> %remote;', "ana@example.org"),
    ],
    ids=["internal entity", "billion laughs", "external entity", "parameter entity"],
)
def test_xml_declaring_entities_is_refused_in_any_part(app, editor_client, tmp_path, doctype, cell):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-server-secret@example.org")
    doctype = doctype.format(secret=secret)
    in_sheet = workbook(tmp_path / "sheet.xlsx", with_doctype(doctype, cell))
    in_strings = workbook(
        tmp_path / "strings.xlsx",
        [
            f'<worksheet xmlns="{MAIN}"><sheetData>'.encode(),
            b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>',
            b'<row r="2"><c r="A2" t="s"><v>1</v></c></row>',
            SHEET_END,
        ],
        strings=(
            f'<?xml version="1.0"?><!DOCTYPE sst [{doctype}]>'
            f'<sst xmlns="{MAIN}"><si><t>Email</t></si><si><t>{cell}</t></si></sst>'
        ).encode(),
    )

    for path, part in ((in_sheet, "xl/worksheets/s.xml"), (in_strings, "xl/strings.xml")):
        response = post_file(editor_client, path.read_bytes(), "contacts.xlsx")

        assert response.status_code == 400, path
        page = response.get_data(as_text=True)
        assert f"its part {part} has a document type declaration (DTD)" in page
        assert "the-server-secret" not in page
    assert kept_uploads(app) == []
    assert contact_count(app) == 0


def test_a_cell_of_megabytes_is_refused(app, editor_client, tmp_path):
    # Random letters, so that the sheet packs no better than text does: this is the row
    # limit at work, not the packing ratio.
    text = "".join(random.Random(9).choices("abcdefghijklmnopqrstuvwxyz", k=2 * MB)).encode()
    path = workbook(
        tmp_path / "long.xlsx",
        [
            SHEET_START,
            b'<row r="2"><c t="inlineStr"><is><t>',
            text,
            b"</t></is></c></row>",
            SHEET_END,
        ],
    )

    response = post_file(editor_client, path.read_bytes(), "contacts.xlsx")
    url = page_url(response)
    finished(editor_client, url)
    page = editor_client.get(url)

    assert page.status_code == 400
    assert "Row 2 holds more than 1,048,576 characters of text" in page.get_data(as_text=True)


def test_an_archive_of_thousands_of_parts_is_refused_before_its_directory_is_read(
    app, editor_client, tmp_path
):
    path = workbook(
        tmp_path / "parts.xlsx", [SHEET_START, CONTACT_ROW, SHEET_END], extra_parts=10_001
    )

    response = post_file(editor_client, path.read_bytes(), "contacts.xlsx")

    assert response.status_code == 400
    assert "a ZIP archive of 10,004 parts, far more than a workbook has" in response.get_data(
        as_text=True
    )


def varied_workbook(path: Path, rows: int) -> Path:
    """An honest workbook of `rows` different contacts, packing about 5 to 1."""
    generator = random.Random(5)

    def sheet() -> Iterable[bytes]:
        yield SHEET_START
        for number in range(2, rows + 2):
            name = "".join(generator.choices("abcdefghijklmnopqrstuvwxyz", k=12))
            yield (
                f'<row r="{number}"><c t="inlineStr"><is><t>{name}@example.org</t></is></c>'
                f'<c t="inlineStr"><is><t>{name.title()}</t></is></c></row>'
            ).encode()
        yield SHEET_END

    return workbook(path, sheet())


def test_the_unpacked_size_limit_is_a_setting(tmp_path):
    path = varied_workbook(tmp_path / "honest.xlsx", 40_000)  # unpacks to about 3.8 MB
    (tmp_path / "strict").mkdir()
    (tmp_path / "default").mkdir()
    strict = make_app(tmp_path / "strict", IMPORT_MAX_UNPACKED_BYTES=2 * MB)
    default = make_app(tmp_path / "default")

    refused = post_file(staff_client(strict, "editor"), path.read_bytes(), "honest.xlsx")
    accepted = post_file(staff_client(default, "editor"), path.read_bytes(), "honest.xlsx")

    assert refused.status_code == 400
    assert "The workbook unpacks to more than 2.0 MB, the most that can be read" in (
        refused.get_data(as_text=True)
    )
    assert accepted.status_code == 302


def test_the_packing_ratio_limit_is_a_setting(tmp_path):
    path = varied_workbook(tmp_path / "honest.xlsx", 40_000)
    (tmp_path / "strict").mkdir()
    strict = make_app(tmp_path / "strict", IMPORT_MAX_UNPACK_RATIO=2)

    refused = post_file(staff_client(strict, "editor"), path.read_bytes(), "honest.xlsx")

    assert refused.status_code == 400
    assert "unpacks to more than 2 times its packed size" in refused.get_data(as_text=True)


def test_the_apps_own_large_export_is_read_back_within_the_limits(app, runner, tmp_path):
    result = runner.invoke(args=["demo-data", "--contacts", "3000"])
    assert result.exit_code == 0, result.output
    export = tmp_path / "contacts.xlsx"
    result = runner.invoke(args=["contacts", "export", "--format", "xlsx", "--output", str(export)])
    assert result.exit_code == 0, result.output
    exported = re.search(r"Exported ([\d,]+) contact", result.output)[1]
    with zipfile.ZipFile(export) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    assert sheet.file_size > 2 * MB  # large enough for the ratio to be judged

    result = runner.invoke(args=["contacts", "import", str(export), "--dry-run", "--quiet"])

    assert result.exit_code == 0, result.output
    assert f"of {exported} rows;" in result.output


def test_a_bomb_hidden_in_an_unread_part_costs_nothing(app, editor_client, tmp_path):
    path = workbook(tmp_path / "book.xlsx", [SHEET_START, CONTACT_ROW, SHEET_END])
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("xl/media/image1.png", "w", force_zip64=True) as out,
    ):
        for chunk in repeated(b"\0" * 1024, 200 * MB):
            out.write(chunk)

    started = time.process_time()
    response = post_file(editor_client, path.read_bytes(), "contacts.xlsx")

    assert response.status_code == 302
    assert time.process_time() - started < CPU_SECONDS
