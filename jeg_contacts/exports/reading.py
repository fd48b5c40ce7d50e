"""Reading contact lists to import: CSV in the usual encodings and delimiters, and XLSX.

Everything a hostile or broken file can do ends in `UnreadableFile` with a message meant for
the person who chose the file: what is wrong and what to do about it. Rows are read lazily,
so a large file never sits in memory whole.
"""

import codecs
import csv
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jeg_contacts.exports.xlsx import DamagedWorkbook, Sheet, WorkbookReader

ENCODINGS = {
    "auto": "Detect automatically",
    "utf-8": "UTF-8",
    "cp1251": "Windows-1251 (Cyrillic)",
    "latin-1": "Latin-1 / Windows-1252 (Western European)",
    "utf-16": "UTF-16 (Excel “Unicode text”)",
}
DELIMITERS = {
    "auto": "Detect automatically",
    ",": "Comma",
    ";": "Semicolon",
    "\t": "Tab",
    "|": "Vertical bar",
}
_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
CODEC_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with byte order mark",
    "utf-16": "UTF-16",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "Latin-1 (Western European)",
}

MAX_COLUMNS = 200
MAX_HEADER_LENGTH = 100
_SAMPLE_BYTES = 64 * 1024
_READ_CHUNK = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls, .doc, encrypted Office files
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_EMAIL_LIKE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UnreadableFile(Exception):
    """The file cannot be read as a table; `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SourceRow:
    """One data row: its number as a spreadsheet program shows it, and its cells as text."""

    number: int
    cells: list[str]
    formulas: frozenset[int] = frozenset()  # indexes of cells holding a formula (XLSX)


@dataclass
class Table:
    """A readable file: its column names, how it was read, and its data rows on demand."""

    path: Path
    kind: str  # "csv" or "xlsx"
    header: list[str]
    header_number: int
    codec: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    row_count: int | None = None  # data rows, when known without reading the file again
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        if self.kind == "xlsx":
            return f"Excel workbook, sheet “{self.sheet}”"
        delimiter = DELIMITERS.get(self.delimiter or "", repr(self.delimiter)).lower()
        return f"CSV, {CODEC_NAMES.get(self.codec or '', self.codec)}, {delimiter}-separated"

    def rows(self) -> Iterator[SourceRow]:
        """The data rows after the header, blank ones skipped; UnreadableFile if the file
        turns out to be broken further down."""
        if self.kind == "xlsx":
            return _xlsx_rows(self)
        return _csv_rows(self)


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def open_table(
    path: Path,
    *,
    encoding: str = "auto",
    delimiter: str = "auto",
    max_bytes: int | None = None,
    max_rows: int | None = None,
) -> Table:
    """Check that `path` holds a table we can read, and how to read it."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(_SAMPLE_BYTES)
    except OSError as error:
        raise UnreadableFile(f"The file cannot be opened: {error.strerror}.") from None
    if size == 0 or not head.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        raise UnreadableFile("The file is empty.")
    if max_bytes is not None and size > max_bytes:
        raise UnreadableFile(
            f"The file is {megabytes(size)}; at most {megabytes(max_bytes)} can be imported at "
            "once. Split it into smaller files, or save it as XLSX, which is smaller."
        )
    if head.startswith(_ZIP_MAGIC):
        table = _open_xlsx(path)
    elif head.startswith(_OLE_MAGIC):
        raise UnreadableFile(
            "This is an old Excel (.xls) file or a password-protected document. Open it in "
            "Excel and save it as “Excel Workbook (.xlsx)” or “CSV UTF-8”, without a password."
        )
    elif head.startswith(b"%PDF"):
        raise UnreadableFile("This is a PDF document. Import a CSV or Excel (.xlsx) file.")
    else:
        table = _open_csv(path, head, encoding, delimiter, max_rows)
    if len(table.header) > MAX_COLUMNS:
        raise UnreadableFile(
            f"The file has {len(table.header)} columns; at most {MAX_COLUMNS} can be read. "
            "Is the delimiter right?"
        )
    if any(_EMAIL_LIKE.match(name) for name in table.header):
        table.notes.append(
            f"Row {table.header_number} holds an email address, but it is read as the column "
            "names. Add a row of column names (Email, Given name, …) above the contacts."
        )
    return table


def _column_names(cells: list[str]) -> list[str]:
    """Header cells as column names: trimmed, never empty, never twice the same."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = " ".join(cell.replace("\ufeff", "").split())[:MAX_HEADER_LENGTH]
        name = name or f"Column {index + 1}"
        key = name.casefold()
        seen[key] = seen.get(key, 0) + 1
        names.append(name if seen[key] == 1 else f"{name} ({seen[key]})")
    return names


def _is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


# --- CSV ----------------------------------------------------------------------------------


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in b"\t\n\r\f") + sample.count(
        0x7F
    )
    return controls > len(sample) * 0.02


def _decodes(path: Path, codec: str) -> UnicodeDecodeError | None:
    """None if the whole file decodes with `codec`, else the first error (offset in the file)."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    with path.open("rb") as file:
        while True:
            chunk = file.read(_READ_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                return UnicodeDecodeError(
                    error.encoding,
                    error.object,
                    offset + error.start,
                    offset + error.end,
                    error.reason,
                )
            if not chunk:
                return None
            offset += len(chunk)


def _line_of(path: Path, offset: int) -> int:
    with path.open("rb") as file:
        return file.read(offset).count(b"\n") + 1


def _guess_single_byte(sample: bytes) -> str:
    """Windows-1251 or Western European, for text that is not UTF-8.

    Cyrillic letters are all bytes from 0xC0 in Windows-1251, so Russian words are runs of
    such bytes; in Western text they are accented letters, mostly alone between ASCII ones."""
    high = [index for index, byte in enumerate(sample) if byte >= 0xC0]
    if not high:
        return "latin-1"
    in_runs = sum(
        1
        for index in high
        if (index > 0 and sample[index - 1] >= 0xC0)
        or (index + 1 < len(sample) and sample[index + 1] >= 0xC0)
    )
    return "cp1251" if in_runs > len(high) / 2 else "latin-1"


def _choose_codec(path: Path, head: bytes, encoding: str) -> str:
    bom_codec = next((codec for bom, codec in _BOMS if head.startswith(bom)), None)
    if encoding == "auto":
        if bom_codec:
            encoding = bom_codec
        elif _decodes(path, "utf-8") is None:
            encoding = "utf-8"
        else:
            encoding = _guess_single_byte(head)
    elif encoding == "utf-8" and bom_codec == "utf-8-sig":
        encoding = "utf-8-sig"
    if encoding not in ("utf-16",) and _looks_binary(head):
        raise UnreadableFile(
            "This does not look like a CSV or Excel file: it contains binary data. Save the "
            "spreadsheet as “CSV UTF-8” or as an Excel workbook (.xlsx) and import that."
        )
    if encoding == "latin-1":
        # Excel writes Windows-1252, Latin-1 plus curly quotes and € in bytes Latin-1 leaves
        # to control characters; use it unless the file has bytes it does not define.
        return "cp1252" if _decodes(path, "cp1252") is None else "latin-1"
    error = _decodes(path, encoding)
    if error is not None:
        name = CODEC_NAMES.get(encoding, ENCODINGS.get(encoding, encoding))
        raise UnreadableFile(
            f"The file is not in {name}: the byte 0x{error.object[error.start]:02X} on line "
            f"{_line_of(path, error.start)} is not valid there. Choose the file's encoding "
            "(Windows-1251 for Cyrillic text saved by Excel, Latin-1 for Western European), "
            "or let it be detected automatically."
        )
    return encoding


def _sniff_delimiter(sample: str) -> str:
    """The candidate delimiter that splits the most sample rows into the header's width."""
    lines = [line for line in sample.splitlines()[:100] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside the last line
    if not lines:
        return ","
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_CANDIDATE_DELIMITERS))
        preferred = sniffed.delimiter
    except csv.Error:
        preferred = ","

    def score(candidate: str) -> tuple[int, int]:
        rows = list(csv.reader(lines, delimiter=candidate))
        width = len(rows[0])
        if width < 2:
            return (0, 0)
        return (sum(1 for row in rows if len(row) == width) * width, candidate == preferred)

    return max(_CANDIDATE_DELIMITERS, key=score)


def _csv_reader(table: Table) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every record; csv errors become UnreadableFile."""
    with table.path.open(encoding=table.codec, newline="") as text:
        reader = csv.reader(text, delimiter=table.delimiter or ",")
        number = 0
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise UnreadableFile(_csv_problem(error, line)) from None
            number += 1
            yield number, cells


def _csv_problem(error: csv.Error, line: int) -> str:
    if "field larger than field limit" in str(error):
        return (
            f"A cell starting on line {line} is longer than {csv.field_size_limit():,} "
            'characters, so nothing can be imported from this file. Most often a quote (") '
            "opens a cell there and is never closed; otherwise shorten that cell."
        )
    return f"The file cannot be read as CSV near line {line}: {error}."


def _open_csv(
    path: Path, head: bytes, encoding: str, delimiter: str, max_rows: int | None
) -> Table:
    if encoding not in ENCODINGS:
        raise UnreadableFile(
            f"Unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}."
        )
    if delimiter not in DELIMITERS:
        raise UnreadableFile("Choose a comma, semicolon, tab or vertical bar as the delimiter.")
    codec = _choose_codec(path, head, encoding)
    if delimiter == "auto":
        delimiter = _sniff_delimiter(head.decode(codec, errors="replace"))
    table = Table(path, "csv", [], 0, codec=codec, delimiter=delimiter)
    # Read the whole file once now, so a broken one is refused before anything is planned.
    data_rows = 0
    for number, cells in _csv_reader(table):
        if _is_blank(cells):
            continue
        if not table.header:
            table.header, table.header_number = _column_names(cells), number
            continue
        data_rows += 1
        if max_rows is not None and data_rows > max_rows:
            raise UnreadableFile(
                f"The file has more than {max_rows:,} contacts; split it into smaller files."
            )
    if not table.header:
        raise UnreadableFile("The file is empty.")
    if not data_rows:
        raise UnreadableFile("The file has a row of column names but no contacts below it.")
    if len(table.header) == 1 and delimiter == "auto":
        table.notes.append("Only one column was found: check the delimiter.")
    table.row_count = data_rows
    return table


def _csv_rows(table: Table) -> Iterator[SourceRow]:
    for number, cells in _csv_reader(table):
        if number > table.header_number and not _is_blank(cells):
            yield SourceRow(number, cells)


# --- XLSX ---------------------------------------------------------------------------------


@contextmanager
def _workbook(path: Path) -> Iterator[WorkbookReader]:
    """The workbook in `path`, open for reading; UnreadableFile if it is not one."""
    with path.open("rb") as file:
        try:
            with zipfile.ZipFile(file) as archive:
                names = set(archive.namelist())
                if "mimetype" in names and b"opendocument" in archive.read("mimetype"):
                    raise UnreadableFile(
                        "This is an OpenDocument spreadsheet (.ods). Save it as an Excel "
                        "workbook (.xlsx) or as CSV UTF-8 and import that."
                    )
                if "xl/workbook.xml" not in names:
                    raise UnreadableFile(
                        "This is a ZIP archive but not an Excel workbook. Import a CSV or "
                        ".xlsx file."
                    )
            file.seek(0)
            workbook = WorkbookReader(file)
        except (zipfile.BadZipFile, DamagedWorkbook):
            raise UnreadableFile(
                "The file could not be opened as an Excel workbook (.xlsx): it may be damaged. "
                "Open it in Excel and save it again, or save it as CSV UTF-8."
            ) from None
        try:
            yield workbook
        finally:
            workbook.close()


def _sheet(workbook: WorkbookReader, name: str | None) -> Sheet:
    visible = [sheet for sheet in workbook.sheets if sheet.visible]
    if not visible:
        raise UnreadableFile("The workbook has no visible sheet to import.")
    return next((sheet for sheet in visible if sheet.name == name), visible[0])


def _sheet_rows(table: Table) -> Iterator[tuple[int, list[str], frozenset[int]]]:
    with _workbook(table.path) as workbook:
        try:
            yield from workbook.rows(_sheet(workbook, table.sheet))
        # A damaged sheet fails in the XML or ZIP layer with whatever they raise; every one
        # of them means the same to the person importing.
        except (DamagedWorkbook, ET.ParseError, zipfile.BadZipFile, OSError, ValueError,
                IndexError, EOFError):  # fmt: skip
            raise UnreadableFile(
                "Part of the workbook could not be read: it may be damaged. Open it in Excel "
                "and save it again, or save it as CSV UTF-8."
            ) from None


def _open_xlsx(path: Path) -> Table:
    with _workbook(path) as workbook:
        sheet = _sheet(workbook, None)
        table = Table(path, "xlsx", [], 0, sheet=sheet.name)
        if len(workbook.sheets) > 1:
            others = len(workbook.sheets) - 1
            table.notes.append(
                f"Only the first sheet, “{sheet.name}”, is imported; the workbook has "
                f"{others} other sheet{'s' if others > 1 else ''}."
            )
        try:
            max_row = workbook.dimension(sheet)
        except (DamagedWorkbook, ET.ParseError, zipfile.BadZipFile, OSError):
            max_row = None
    with closing(_sheet_rows(table)) as rows:
        for number, cells, _formulas in rows:
            if not _is_blank(cells):
                table.header, table.header_number = _column_names(_trim(cells)), number
                break
    if not table.header:
        raise UnreadableFile("The workbook's first sheet is empty.")
    if isinstance(max_row, int):
        table.row_count = max(max_row - table.header_number, 0)
        if table.row_count == 0:
            raise UnreadableFile("The sheet has a row of column names but no contacts below it.")
    return table


def _trim(cells: list[str]) -> list[str]:
    """Cells without the empty ones at the end (spreadsheets pad rows to the widest)."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def _xlsx_rows(table: Table) -> Iterator[SourceRow]:
    seen = False
    for number, cells, formulas in _sheet_rows(table):
        if number <= table.header_number or _is_blank(cells):
            continue
        seen = True
        yield SourceRow(number, _trim(cells), formulas)
    if not seen:
        raise UnreadableFile("The sheet has a row of column names but no contacts below it.")
