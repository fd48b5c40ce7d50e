"""Reading files to import: encodings, delimiters and workbooks, detected or chosen."""

import codecs

import pytest

from jeg_contacts.imports.reading import UnreadableFile, open_table
from tests.imports.conftest import csv_bytes, row, write, xlsx_bytes

CYRILLIC = [row("olga@example.ru", "Ольга", "Иванова", organisation="МЧС России", country="RU")]
FRENCH = [row("jean@example.fr", "Jérôme", "Lefèvre", organisation="Ministère de l'Écologie")]


def cells(table) -> list[list[str]]:
    return [source.cells for source in table.rows()]


@pytest.mark.parametrize(
    ("encoding", "rows", "codec"),
    [
        ("utf-8", CYRILLIC, "utf-8"),
        ("utf-8-sig", CYRILLIC, "utf-8-sig"),
        ("cp1251", CYRILLIC, "cp1251"),
        ("cp1252", FRENCH, "cp1252"),
        ("latin-1", FRENCH, "cp1252"),
        ("utf-16", CYRILLIC, "utf-16"),
    ],
)
def test_encodings_are_detected(tmp_path, encoding, rows, codec):
    path = write(tmp_path, "list.csv", csv_bytes(rows, encoding=encoding))

    table = open_table(path)

    assert table.codec == codec
    assert table.header[0] == "Email"  # no byte order mark left in the first name
    assert cells(table) == rows


def test_a_chosen_encoding_is_used(tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes(CYRILLIC, encoding="cp1251"))

    assert cells(open_table(path, encoding="cp1251")) == CYRILLIC


def test_the_wrong_chosen_encoding_is_named_with_the_line(tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes(CYRILLIC, encoding="cp1251"))

    with pytest.raises(UnreadableFile) as error:
        open_table(path, encoding="utf-8")

    assert "The file is not in UTF-8" in error.value.message
    assert "on line 2" in error.value.message


def test_windows_1252_punctuation_is_kept(tmp_path):
    rows = [row("jean@example.fr", "Jean", "L’Hôte", organisation="Ministère “Écologie”")]  # noqa: RUF001
    path = write(tmp_path, "list.csv", csv_bytes(rows, encoding="cp1252"))

    assert cells(open_table(path)) == rows


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    rows = [
        row("ana@example.org", organisation="Institute of Hydrology, Dresden"),
        row("bo@example.org", "Bo", "Berg", topics="pipelines; oil-terminals"),
    ]
    path = write(tmp_path, "list.csv", csv_bytes(rows, delimiter=delimiter))

    table = open_table(path)

    assert table.delimiter == delimiter
    assert cells(table) == rows


def test_blank_lines_are_skipped_and_rows_keep_their_spreadsheet_numbers(tmp_path):
    content = (
        b"\r\n"
        + csv_bytes([row("ana@example.org")])
        + b"\r\n,,,\r\n"
        + csv_bytes([row("bo@example.org")], header=[]).lstrip(b"\r\n")
    )
    path = write(tmp_path, "list.csv", content)

    table = open_table(path)

    assert table.header_number == 2
    assert [source.number for source in table.rows()] == [3, 6]


def test_empty_and_duplicate_column_names_are_made_distinct(tmp_path):
    path = write(tmp_path, "list.csv", b"Email,,email,Email\r\na@example.org,1,2,3\r\n")

    assert open_table(path).header == ["Email", "Column 2", "email (2)", "Email (3)"]


def test_a_header_row_that_is_an_address_is_pointed_out(tmp_path):
    path = write(tmp_path, "list.csv", b"ana@example.org,Ana\r\nbo@example.org,Bo\r\n")

    [note] = open_table(path).notes

    assert "Row 1 holds an email address" in note


def test_too_many_rows_are_refused(tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row(f"p{i}@example.org") for i in range(11)]))

    with pytest.raises(UnreadableFile, match="more than 10 contacts"):
        open_table(path, max_rows=10)


def test_files_over_the_size_limit_are_refused(tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")] * 50))

    with pytest.raises(UnreadableFile, match=r"at most 0\.0 MB can be imported"):
        open_table(path, max_bytes=100)


def test_workbooks_give_text_cells_and_formulas(tmp_path):
    content = xlsx_bytes(
        [
            ["ana@example.org", "Ana", "Silva", "UBA", "ngo", "DE", "pipelines"],
            [None] * 7,
            ["bo@example.org", 41229171234, 3.5, "=A2", True, "DE", "pipelines"],
        ]
    )
    table = open_table(write(tmp_path, "list.xlsx", content))

    rows = list(table.rows())

    assert table.kind == "xlsx"
    assert table.sheet == "Contacts"
    assert [source.number for source in rows] == [2, 4]
    assert rows[1].cells[:5] == ["bo@example.org", "41229171234", "3.5", "=A2", "TRUE"]
    assert rows[1].formulas == frozenset({3})


def test_other_sheets_are_mentioned(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["Email"])
    workbook.active.append(["ana@example.org"])
    workbook.create_sheet("Notes")
    path = tmp_path / "two.xlsx"
    workbook.save(path)

    [note] = open_table(path).notes

    assert "the workbook has 1 other sheet" in note


def test_opendocument_spreadsheets_are_named(tmp_path):
    import zipfile

    path = tmp_path / "list.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")

    with pytest.raises(UnreadableFile, match=r"OpenDocument spreadsheet \(.ods\)"):
        open_table(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(UnreadableFile, match="cannot be opened"):
        open_table(tmp_path / "nowhere.csv")


def test_utf16_without_a_byte_order_mark_is_not_mistaken_for_text(tmp_path):
    content = codecs.encode("Email\r\nana@example.org\r\n", "utf-16-le")
    path = write(tmp_path, "list.csv", content)

    with pytest.raises(UnreadableFile, match="binary data"):
        open_table(path)


def _hand_made_xlsx(path, sheet_xml: str, *, strings: str | None = None, hidden_first=False):
    """A workbook written by hand, in the ways other programs than openpyxl write them."""
    import zipfile

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relations = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    sheets = (
        '<sheet name="Hidden" sheetId="2" state="hidden" r:id="rId3"/>' if hidden_first else ""
    ) + '<sheet name="Liste" sheetId="1" r:id="rId1"/>'
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{main}" xmlns:r="{relations}"><sheets>{sheets}</sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{package}">'
            f'<Relationship Id="rId1" Type="{relations}/worksheet" Target="/xl/worksheets/a.xml"/>'
            f'<Relationship Id="rId3" Type="{relations}/worksheet" Target="worksheets/b.xml"/>'
            f'<Relationship Id="rId2" Type="{relations}/sharedStrings" Target="strings.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/worksheets/a.xml", f'<worksheet xmlns="{main}">{sheet_xml}</worksheet>'
        )
        archive.writestr(
            "xl/worksheets/b.xml", f'<worksheet xmlns="{main}"><sheetData/></worksheet>'
        )
        if strings is not None:
            archive.writestr("xl/strings.xml", f'<sst xmlns="{main}">{strings}</sst>')


def test_workbooks_written_by_other_programs_are_read(tmp_path):
    path = tmp_path / "other.xlsx"
    _hand_made_xlsx(
        path,
        '<dimension ref="A1:C3"/><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c></row>'
        '<row r="3"><c t="inlineStr"><is><t>ana@example.org</t></is></c>'
        '<c t="s"><v>2</v></c><c t="str"><f>B3&amp;"!"</f><v>x!</v></c></row>'
        "</sheetData>",
        strings="<si><t>Email</t></si><si><t>Notes</t></si>"
        '<si><r><t>Line_x000D_</t></r><r><t xml:space="preserve"> two</t></r>'
        "<rPh><t>phonetic</t></rPh></si>",
        hidden_first=True,
    )

    table = open_table(path)

    assert (table.sheet, table.header, table.row_count) == (
        "Liste",
        ["Email", "Column 2", "Notes"],
        2,
    )
    [source] = list(table.rows())
    assert source.number == 3
    assert source.cells == ["ana@example.org", "Line\r two", '=B3&"!"']
    assert source.formulas == frozenset({2})


def test_a_workbook_with_a_broken_sheet_is_refused_when_read(tmp_path):
    path = tmp_path / "broken.xlsx"
    _hand_made_xlsx(path, "<sheetData><row><c><v>1</v></c></row><row><c>", strings="")

    with pytest.raises(UnreadableFile, match="could not be read"):
        list(open_table(path).rows())


def test_a_file_read_as_one_column_suggests_checking_the_delimiter(tmp_path):
    # Colons are no delimiter anyone chooses: the whole line lands in one column.
    path = write(tmp_path, "list.csv", b"Email:Name\r\nana@example.org:Ana\r\n")

    table = open_table(path)

    assert table.header == ["Email:Name"]
    assert "Only one column was found: check the delimiter." in table.notes


def test_one_column_by_the_delimiter_chosen_is_not_questioned(tmp_path):
    path = write(tmp_path, "list.csv", b"Email\r\nana@example.org\r\n")

    assert open_table(path, delimiter=",").notes == []
