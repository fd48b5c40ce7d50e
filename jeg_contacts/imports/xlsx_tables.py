"""XLSX workbooks to import: the first visible sheet of one, read by xlsx.py as a Table.

Whatever the reader refuses or fails on becomes an UnreadableFile saying what to do about it.
"""

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from jeg_contacts.imports.tables import (
    MAX_COLUMNS,
    RowCounter,
    SourceRow,
    Table,
    UnreadableFile,
    column_names,
    is_blank,
    megabytes,
)
from jeg_contacts.imports.unpacking import (
    DamagedWorkbook,
    PackedTooTightly,
    RefusedWorkbook,
    TooManyParts,
    UnpackLimits,
    UnpacksTooLarge,
)
from jeg_contacts.imports.xlsx import (
    DeclaresEntities,
    NotAWorkbook,
    RowTooLarge,
    RowTooWide,
    Sheet,
    WorkbookReader,
)
from jeg_contacts.spreadsheets import column_letter


class XlsxTable(Table):
    """A sheet of an XLSX workbook, read within `unpack_limits`."""

    @property
    def description(self) -> str:
        return f"Excel workbook, sheet “{self.sheet}”"

    def rows(self) -> Iterator[SourceRow]:
        """The data rows after the header, blank ones skipped; UnreadableFile if the file
        turns out to be broken further down."""
        return _xlsx_rows(self)


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


def open_xlsx(path: Path, max_rows: int | None, limits: UnpackLimits) -> XlsxTable:
    """The first visible sheet of the workbook in `path`, its size checked."""
    with _workbook(path, limits) as workbook:
        sheet = _sheet(workbook, None)
        table = XlsxTable(
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
    counter = RowCounter(max_rows)
    with closing(_sheet_rows(table)) as rows:
        for number, cells, _formulas in rows:
            if not is_blank(cells):
                table.header, table.header_number = column_names(_trim(cells)), number
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
    counter = RowCounter(table.max_rows)
    before = 0  # rows numbered up to the header's: the header and any blank ones above it
    for number, cells, formulas in _sheet_rows(table):
        if number <= table.header_number:
            before += 1
            if before > table.header_number:  # numbers repeated: they cost rows all the same
                counter.count(blank=True)
            continue
        blank = is_blank(cells)
        counter.count(blank)
        if blank:
            continue
        seen = True
        yield SourceRow(number, _trim(cells), formulas)
    if not seen:
        raise UnreadableFile("The sheet has a row of column names but no contacts below it.")
