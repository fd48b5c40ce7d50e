"""What a contact list to import becomes once it can be read: a Table of text rows.

csv_tables.py and xlsx_tables.py make one of each kind of file, and reading.py's
`open_table` tells which kind a file is. What both share is here: the one error everything
ends in, column names, and the row limit, which blank rows count towards as well.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jeg_contacts.imports.unpacking import UnpackLimits

MAX_COLUMNS = 200
MAX_HEADER_LENGTH = 100


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
    """A readable file: its column names, how it was read, and its data rows on demand.

    Each kind of file is a subclass (CsvTable, XlsxTable) saying how its rows are read."""

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
        """How the file is read, for the person importing it."""
        raise NotImplementedError

    def rows(self) -> Iterator[SourceRow]:
        """The data rows after the header, blank ones skipped; UnreadableFile if the file
        turns out to be broken further down."""
        raise NotImplementedError


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def column_names(cells: list[str]) -> list[str]:
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


def is_blank(cells: list[str]) -> bool:
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


class RowCounter:
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
