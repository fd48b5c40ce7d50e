"""CSV files to import, in the usual encodings and delimiters.

The encoding is the one chosen, or detected (a byte order mark, else UTF-8 if the whole file
decodes as such, else Windows-1251 or Western European by how the non-ASCII bytes fall); the
delimiter is sniffed from the first lines. The whole file is read once on opening, so a broken
one is refused before anything is planned, and no record may hold more than MAX_RECORD_CHARS.
"""

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

from jeg_contacts.imports.tables import (
    RowCounter,
    SourceRow,
    Table,
    UnreadableFile,
    column_names,
    is_blank,
)
from jeg_contacts.imports.xlsx import MAX_ROW_CHARS

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

# Characters one CSV record may hold, quoted line breaks included; the csv module builds a
# whole record in memory, a list item per field, before anything can look at it.
MAX_RECORD_CHARS = MAX_ROW_CHARS
_READ_CHUNK = 1024 * 1024
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class CsvTable(Table):
    """A CSV file, read in `codec` with `delimiter`."""

    @property
    def description(self) -> str:
        delimiter = DELIMITERS.get(self.delimiter or "", repr(self.delimiter)).lower()
        return f"CSV, {CODEC_NAMES.get(self.codec or '', self.codec)}, {delimiter}-separated"

    def rows(self) -> Iterator[SourceRow]:
        """The data rows after the header, blank ones skipped; UnreadableFile if the file
        turns out to be broken further down."""
        for number, cells in _csv_reader(self):
            if number > self.header_number and not is_blank(cells):
                yield SourceRow(number, cells)


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


def open_csv(
    path: Path, head: bytes, encoding: str, delimiter: str, max_rows: int | None
) -> CsvTable:
    """The CSV file in `path`, whose first bytes are `head`, checked to its end."""
    if encoding not in ENCODINGS:
        raise UnreadableFile(
            f"Unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}."
        )
    if delimiter not in DELIMITERS:
        raise UnreadableFile("Choose a comma, semicolon, tab or vertical bar as the delimiter.")
    codec = _choose_codec(path, head, encoding)
    sniffed = delimiter == "auto"
    if sniffed:
        delimiter = _sniff_delimiter(head.decode(codec, errors="replace"))
    table = CsvTable(path, "csv", [], 0, codec=codec, delimiter=delimiter, max_rows=max_rows)
    # Read the whole file once now, so a broken one is refused before anything is planned.
    data_rows = 0
    counter = RowCounter(max_rows)
    for number, cells in _csv_reader(table):
        blank = is_blank(cells)
        if not table.header:
            if blank:
                counter.count(blank)
                continue
            table.header, table.header_number = column_names(cells), number
            counter = RowCounter(max_rows)
            continue
        counter.count(blank)
        data_rows += not blank
    if not table.header:
        raise UnreadableFile("The file is empty.")
    if not data_rows:
        raise UnreadableFile("The file has a row of column names but no contacts below it.")
    if len(table.header) == 1 and sniffed:
        table.notes.append("Only one column was found: check the delimiter.")
    table.row_count = data_rows
    return table
