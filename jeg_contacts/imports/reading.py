"""Reading contact lists to import: CSV in the usual encodings and delimiters, and XLSX.

Everything a hostile or broken file can do ends in `UnreadableFile` with a message meant for
the person who chose the file: what is wrong and what to do about it. Rows are read lazily,
so a large file never sits in memory whole, and what a file may cost is bounded: rows count
towards the limit whether blank or not, one CSV record or XLSX row holds at most a megabyte
of text, and a workbook unpacks within UnpackLimits (unpacking.py).
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
from typing import IO, NamedTuple

from jeg_contacts.imports.unpacking import (
    DamagedWorkbook,
    PackedTooTightly,
    RefusedWorkbook,
    TooManyParts,
    UnpackLimits,
    UnpacksTooLarge,
)
from jeg_contacts.imports.xlsx import (
    MAX_ROW_CHARS,
    DeclaresEntities,
    NotAWorkbook,
    RowTooLarge,
    RowTooWide,
    Sheet,
    WorkbookReader,
)
from jeg_contacts.spreadsheets import column_letter

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
# Characters one CSV record may hold, quoted line breaks included; the csv module builds a
# whole record in memory, a list item per field, before anything can look at it.
MAX_RECORD_CHARS = MAX_ROW_CHARS
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
    max_rows: int | None = None  # rows after the header, blank ones included
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)

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
    unpack_limits: UnpackLimits | None = None,
) -> Table:
    """Check that `path` holds a table we can read, and how to read it.

    `max_rows` bounds the rows after the header, blank ones included (a million empty rows
    cost as much to read as a million contacts); `unpack_limits` what a workbook may unpack."""
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
        table = _open_xlsx(path, max_rows, unpack_limits or UnpackLimits())
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


def _too_many_rows(max_rows: int, blank_ones: bool) -> UnreadableFile:
    if not blank_ones:
        return UnreadableFile(
            f"The file has more than {max_rows:,} contacts; split it into smaller files."
        )
    return UnreadableFile(
        f"The file has more than {max_rows:,} rows, counting blank ones, and at most "
        f"{max_rows:,} can be read from one file. Delete the empty rows (a spreadsheet may "
        "have kept formatted rows far below the contacts), or split the file."
    )


class _RowCounter:
    """Counts rows, blank or not, as they are read; UnreadableFile past `max_rows`."""

    def __init__(self, max_rows: int | None) -> None:
        self.max_rows = max_rows
        self.rows = 0
        self.blank = 0

    def count(self, blank: bool) -> None:
        self.rows += 1
        self.blank += blank
        if self.max_rows is not None and self.rows > self.max_rows:
            raise _too_many_rows(self.max_rows, blank_ones=self.blank > 0)


# --- CSV ----------------------------------------------------------------------------------


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in b"\t\n\r\f") + sample.count(
        0x7F
    )
    return controls > len(sample) * 0.02


class _BadByte(NamedTuple):
    offset: int  # in the whole file
    value: int


def _decodes(path: Path, codec: str) -> _BadByte | None:
    """None if the whole file decodes with `codec`, else the first byte it cannot decode."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    with path.open("rb") as file:
        while True:
            chunk = file.read(_READ_CHUNK)
            # The error's offsets count from bytes the decoder held back from the last chunk.
            held = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                return _BadByte(offset - held + error.start, error.object[error.start])
            if not chunk:
                return None
            offset += len(chunk)


def _line_of(path: Path, offset: int) -> int:
    lines = 1
    with path.open("rb") as file:
        while offset > 0 and (chunk := file.read(min(offset, _READ_CHUNK))):
            lines += chunk.count(b"\n")
            offset -= len(chunk)
    return lines


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
            f"The file is not in {name}: the byte 0x{error.value:02X} on line "
            f"{_line_of(path, error.offset):,} is not valid there. Choose the file's encoding "
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


class _RecordLines:
    """The lines of a text file for csv.reader, refusing a record longer than
    MAX_RECORD_CHARS before the csv module holds it (a huge line, or a file of delimiters)."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.record_chars = 0  # set to 0 as each record begins
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        while line := self._text.readline(MAX_RECORD_CHARS + 1):
            self.line += 1
            self.record_chars += len(line)
            if self.record_chars > MAX_RECORD_CHARS:
                raise UnreadableFile(
                    f"A row reaching line {self.line:,} is longer than {MAX_RECORD_CHARS:,} "
                    "characters, so nothing can be imported from this file. Most often a "
                    'quote (") opens a cell and is never closed, or the file is not a list of '
                    "contacts at all."
                )
            yield line


def _csv_reader(table: Table) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every record; csv errors become UnreadableFile."""
    with table.path.open(encoding=table.codec, newline="") as text:
        lines = _RecordLines(text)
        reader = csv.reader(iter(lines), delimiter=table.delimiter or ",")
        number = 0
        while True:
            line = reader.line_num + 1
            lines.record_chars = 0
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
    table = Table(path, "csv", [], 0, codec=codec, delimiter=delimiter, max_rows=max_rows)
    # Read the whole file once now, so a broken one is refused before anything is planned.
    data_rows = 0
    counter = _RowCounter(max_rows)
    for number, cells in _csv_reader(table):
        blank = _is_blank(cells)
        if not table.header:
            if blank:
                counter.count(blank)
                continue
            table.header, table.header_number = _column_names(cells), number
            counter = _RowCounter(max_rows)
            continue
        counter.count(blank)
        data_rows += not blank
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


_SAVE_AGAIN = "Open it in Excel and save it again, or save it as CSV UTF-8."


def _refusal(error: RefusedWorkbook) -> str:
    """What to tell the person whose workbook was refused (unpacking.py and xlsx.py say why)."""
    if isinstance(error, UnpacksTooLarge):
        return (
            f"The workbook unpacks to more than {megabytes(error.limit)}, the most that can be "
            "read from one file. Save it as CSV UTF-8, which is read without unpacking, or "
            "split it into smaller files."
        )
    if isinstance(error, PackedTooTightly):
        return (
            f"The workbook was not read: its part {error.part} unpacks to more than "
            f"{error.limit} times its packed size, as no spreadsheet does but a “zip bomb” "
            "does. If it really is a list of contacts, open it in Excel and save it again, or "
            "save it as CSV UTF-8."
        )
    if isinstance(error, DeclaresEntities):
        return (
            f"The workbook was not read: its part {error.part} has a document type "
            "declaration (DTD), which spreadsheet programs never write and which can be used "
            f"to attack the server. {_SAVE_AGAIN}"
        )
    if isinstance(error, TooManyParts):
        return (
            f"The file is a ZIP archive of {error.count:,} parts, far more than a workbook has; "
            "it was not read. Import a CSV or .xlsx file."
        )
    if isinstance(error, RowTooLarge):
        return (
            f"Row {error.number:,} holds more than {error.limit:,} characters of text, so "
            "nothing can be imported from this file. Shorten or delete that row's cells."
        )
    if isinstance(error, RowTooWide):
        return (
            f"Row {error.number:,} has a value in column {column_letter(error.column)}, but "
            f"at most {error.limit} columns (up to {column_letter(error.limit - 1)}) can be "
            "read. Delete what is to the right of them, or copy only the contacts' columns into a "
            "new sheet."
        )
    return f"The workbook was not read: {error}."


_DAMAGED = "The file could not be opened as an Excel workbook (.xlsx): it may be damaged. "


@contextmanager
def _workbook(path: Path, limits: UnpackLimits) -> Iterator[WorkbookReader]:
    """The workbook in `path`, open for reading; UnreadableFile if it is not one."""
    with path.open("rb") as file:
        try:
            workbook = WorkbookReader(file, limits)
        except NotAWorkbook as error:
            if error.opendocument:
                raise UnreadableFile(
                    "This is an OpenDocument spreadsheet (.ods). Save it as an Excel "
                    "workbook (.xlsx) or as CSV UTF-8 and import that."
                ) from None
            raise UnreadableFile(
                "This is a ZIP archive but not an Excel workbook. Import a CSV or .xlsx file."
            ) from None
        except RefusedWorkbook as error:
            raise UnreadableFile(_refusal(error)) from None
        except DamagedWorkbook:
            raise UnreadableFile(_DAMAGED + _SAVE_AGAIN) from None
        try:
            yield workbook
        finally:
            workbook.close()


def _sheet(workbook: WorkbookReader, name: str | None) -> Sheet:
    visible = [sheet for sheet in workbook.sheets if sheet.visible]
    if not visible:
        raise UnreadableFile("The workbook has no visible sheet to import.")
    return next((sheet for sheet in visible if sheet.name == name), visible[0])


# A damaged sheet fails in the XML or ZIP layer with whatever they raise; every one of them
# means the same to the person importing.
_DAMAGE = (DamagedWorkbook, ET.ParseError, zipfile.BadZipFile, OSError, ValueError, IndexError,
           EOFError)  # fmt: skip


def _sheet_rows(table: Table) -> Iterator[tuple[int, list[str], frozenset[int]]]:
    with _workbook(table.path, table.unpack_limits) as workbook:
        try:
            yield from workbook.rows(_sheet(workbook, table.sheet), max_columns=MAX_COLUMNS)
        except RefusedWorkbook as error:
            raise UnreadableFile(_refusal(error)) from None
        except _DAMAGE:
            raise UnreadableFile(
                "Part of the workbook could not be read: it may be damaged. " + _SAVE_AGAIN
            ) from None


def _open_xlsx(path: Path, max_rows: int | None, limits: UnpackLimits) -> Table:
    with _workbook(path, limits) as workbook:
        sheet = _sheet(workbook, None)
        table = Table(
            path, "xlsx", [], 0, sheet=sheet.name, max_rows=max_rows, unpack_limits=limits
        )
        if len(workbook.sheets) > 1:
            others = len(workbook.sheets) - 1
            table.notes.append(
                f"Only the first sheet, “{sheet.name}”, is imported; the workbook has "
                f"{others} other sheet{'s' if others > 1 else ''}."
            )
        try:
            # Everything reading the sheet will unpack, unpacked once now without parsing:
            # a zip bomb is refused here, in a fraction of a second, not rows into an import.
            workbook.check_size(sheet)
        except RefusedWorkbook as error:
            raise UnreadableFile(_refusal(error)) from None
        except _DAMAGE:
            raise UnreadableFile(_DAMAGED + _SAVE_AGAIN) from None
        try:
            max_row = workbook.dimension(sheet)
        except RefusedWorkbook as error:
            raise UnreadableFile(_refusal(error)) from None
        except (DamagedWorkbook, ET.ParseError, zipfile.BadZipFile, OSError):
            max_row = None
    counter = _RowCounter(max_rows)
    with closing(_sheet_rows(table)) as rows:
        for number, cells, _formulas in rows:
            if not _is_blank(cells):
                table.header, table.header_number = _column_names(_trim(cells)), number
                break
            counter.count(blank=True)
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
    counter = _RowCounter(table.max_rows)
    before = 0  # rows numbered up to the header's: the header and any blank ones above it
    for number, cells, formulas in _sheet_rows(table):
        if number <= table.header_number:
            before += 1
            if before > table.header_number:  # numbers repeated: they cost rows all the same
                counter.count(blank=True)
            continue
        blank = _is_blank(cells)
        counter.count(blank)
        if blank:
            continue
        seen = True
        yield SourceRow(number, _trim(cells), formulas)
    if not seen:
        raise UnreadableFile("The sheet has a row of column names but no contacts below it.")
