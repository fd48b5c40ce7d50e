"""The XLSX reader against openpyxl, on sheets larger than one read, and on damage."""

import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from jeg_contacts.exports.xlsx import SheetWriter
from jeg_contacts.imports.reading import UnreadableFile, open_table
from tests.imports.test_reading import _hand_made_xlsx


def test_a_large_sheet_reads_as_openpyxl_reads_it(tmp_path):
    header = ["Email", "Name", "Notes", "Number", "When"]
    rows = [
        [
            f"person{number}@example.org",
            ["Zoë Müller", "Ольга Иванова", "Jean Dupont, fils", "李雷"][number % 4],
            "" if number % 7 else f"<b>&amp;</b> line\r\nbreak {number}",
            number * 1.5 if number % 3 else number,
            datetime(2026, 1, 1, 12, 0, tzinfo=UTC) if number % 5 == 0 else None,
        ]
        for number in range(3000)
    ]
    path = tmp_path / "big.xlsx"
    with path.open("wb") as file:
        sheet = SheetWriter(file, header, [20] * len(header), "Contacts")
        for values in rows:
            sheet.write_row(values)
        sheet.close()
    assert path.stat().st_size > 64 * 1024

    table = open_table(path)
    read = [(source.number, source.cells) for source in table.rows()]

    expected = []
    workbook = load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    for number, values in enumerate(workbook.active.iter_rows(values_only=True), start=1):
        if number == 1:
            assert table.header == list(values)
            continue
        cells = ["" if value is None else value for value in values]
        while cells and cells[-1] == "":
            cells.pop()
        expected.append((number, cells))
    assert len(read) == len(expected) == 3000
    for (number, cells), (expected_number, expected_cells) in zip(read, expected, strict=True):
        assert number == expected_number
        assert cells[:3] == expected_cells[:3]
        if len(expected_cells) > 3:
            assert float(cells[3]) == expected_cells[3]


def test_a_sheet_damaged_past_its_first_rows_is_refused_when_read(tmp_path):
    path = tmp_path / "damaged.xlsx"
    good = '<row><c t="inlineStr"><is><t>ana@example.org</t></is></c></row>'
    _hand_made_xlsx(
        path,
        '<sheetData><row r="1"><c t="inlineStr"><is><t>Email</t></is></c></row>'
        + good * 3000
        + '<row><c t="inlineStr"><is><t>ben@example.org</t></is></x></row>'
        + good
        + "</sheetData>",
        strings="",
    )
    table = open_table(path)
    read = []

    with pytest.raises(UnreadableFile, match="could not be read"):
        for source in table.rows():
            read.append(source.cells)

    assert table.header == ["Email"]
    assert 0 < len(read) <= 3000
    assert all(cells == ["ana@example.org"] for cells in read)
