"""Streaming XLSX: reading the rows of an uploaded workbook as text, within limits.

python-calamine (five times faster) loads a whole sheet as a dense rectangle, so a 1.2 KB
workbook with one value in XFD1048576 aborts the process; openpyxl's read-only mode is four
times slower than this reader (issue 10; docs/benchmarks.md, `bench/xlsx_readers.py`).
"""

import re
import xml.etree.ElementTree as ET
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from jeg_contacts.imports.unpacking import (
    CHUNK,
    Archive,
    DamagedWorkbook,
    RefusedWorkbook,
    UnpackLimits,
)

#
# An uploaded workbook is hostile until read. A small ZIP can unpack to gigabytes and its
# directory can lie about sizes; XML can declare entities that expand a billion-fold or name
# files on the server; a sheet can hold a million empty rows, or one row of a million cells.
# So the bytes really unpacked are counted (unpacking.py), DTDs are refused, one row's text
# and width are bounded, and nothing of a sheet is kept but the row being read.

_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
# Text one row may hold in all (a shared string counts where it is used). A contact's row is
# a few hundred characters; Excel allows 32,767 in one cell.
MAX_ROW_CHARS = 1024 * 1024
# Sheets and relationships the workbook may list.
MAX_SHEETS = 10_000
_NO_FORMULAS: frozenset[int] = frozenset()


class NotAWorkbook(Exception):
    """A ZIP archive with no workbook in it: an OpenDocument spreadsheet, or anything else."""

    def __init__(self, opendocument: bool) -> None:
        super().__init__("an OpenDocument file" if opendocument else "no xl/workbook.xml")
        self.opendocument = opendocument


class DeclaresEntities(RefusedWorkbook):
    """A part has a document type declaration (DTD): the way to entity expansion ("billion
    laughs") and to external entities that read files or URLs."""

    def __init__(self, part: str) -> None:
        super().__init__(f"{part} has a document type declaration")
        self.part = part


class RowTooLarge(RefusedWorkbook):
    def __init__(self, number: int, limit: int) -> None:
        super().__init__(f"row {number} holds more than {limit} characters")
        self.number = number
        self.limit = limit


class RowTooWide(RefusedWorkbook):
    def __init__(self, number: int, column: int, limit: int) -> None:
        super().__init__(f"row {number} has a value in column {column + 1}")
        self.number = number
        self.column = column
        self.limit = limit


@dataclass(frozen=True)
class Sheet:
    name: str
    part: str  # its path inside the archive
    visible: bool


# A sheet has a handful of distinct tags, each seen millions of times.
@lru_cache(maxsize=256)
def _local(tag: str) -> str:
    """A tag without its namespace: transitional and strict OOXML name them differently."""
    return tag.rsplit("}", 1)[-1]


def _unescape(text: str) -> str:
    """Characters Excel writes as _xHHHH_ because XML cannot hold them."""
    return _ESCAPED.sub(lambda match: chr(int(match[1], 16)), text) if "_x" in text else text


def _column_index(reference: str) -> int:
    """0 for A1, 27 for AB7."""
    letters = reference.rstrip("0123456789")
    # The same few column letters recur on every row.
    return _letters_index(letters) if letters.isalpha() else _letters_index(reference)


@lru_cache(maxsize=1024)
def _letters_index(reference: str) -> int:
    index = 0
    for character in reference[:8]:  # XFD is the last column; more letters are nonsense
        if not character.isalpha():
            break
        index = index * 26 + ord(character.upper()) - 64
    return index - 1


def _number(text: str) -> str:
    """A number as typed: 41229171234 rather than 41229171234.0."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else text


class _Parser(DefusedXMLParser):
    """defusedxml's parser, DTDs forbidden as well as entities and external references, but
    handing elements straight from expat to the target: `start(name, attributes)` and
    `end(name)`, names as expat gives them ("namespace}local"). ElementTree's Python layer
    in between, which rebuilds every name and attribute, took a third of a sheet's reading."""

    def __init__(self, target: Any) -> None:
        super().__init__(target=target, forbid_dtd=True)
        self.parser.ordered_attributes = False  # attributes as a dict, built by expat
        self.parser.StartElementHandler = target.start
        if hasattr(target, "end"):
            self.parser.EndElementHandler = target.end


class _StringTable:
    """The shared strings, packed into blocks of text with an offset per string: a Python
    object per string (some 60 bytes) would let a table of tiny strings take several times
    its unpacked size in memory."""

    _BLOCK = 1024

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._offsets: list[array[int]] = []
        self._pending: list[str] = []
        self._count = 0

    def append(self, text: str) -> None:
        self._pending.append(text)
        self._count += 1
        if len(self._pending) == self._BLOCK:
            offsets = array("I", [0])
            for item in self._pending:
                offsets.append(offsets[-1] + len(item))
            self._blocks.append("".join(self._pending))
            self._offsets.append(offsets)
            self._pending = []

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < self._count:
            raise DamagedWorkbook(f"a cell refers to shared string {index}, which is missing")
        block, at = divmod(index, self._BLOCK)
        if block == len(self._blocks):
            return self._pending[at]
        offsets = self._offsets[block]
        return self._blocks[block][offsets[at] : offsets[at + 1]]


class _Text:
    """The text of the v, f or t element being read, within the row's allowance."""

    def __init__(self) -> None:
        self.parts: list[str] | None = None  # None: no text is being read
        self.chars = 0  # in the current row or string item
        self.row = 0  # for the message

    def data(self, text: str) -> None:
        if self.parts is not None:
            self.chars += len(text)
            if self.chars > MAX_ROW_CHARS:
                raise RowTooLarge(self.row, MAX_ROW_CHARS)
            self.parts.append(text)

    def take(self) -> str:
        text = "".join(self.parts or ())
        self.parts = None
        return text


class _SheetTarget:
    """defusedxml parser target reading a sheet's rows as text cells. Only the row being
    read is kept; finished rows wait in `rows` until taken."""

    def __init__(self, strings: _StringTable, max_columns: int) -> None:
        self.rows: list[tuple[int, list[str], frozenset[int]]] = []
        self._strings = strings
        self._max_columns = max_columns
        self._text = _Text()
        self.data = self._text.data
        self._number = 0
        self._cells: list[str] | None = None
        self._formulas: list[int] = []
        # The cell being read.
        self._kind = "n"
        self._column: int | None = None
        self._value: str | None = None
        self._formula: str | None = None
        self._inline: list[str] | None = None
        self._phonetic = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        local = _local(tag)
        if local == "c":
            self._kind = attrib.get("t", "n")
            reference = attrib.get("r")
            self._column = _column_index(reference) if reference else None
            self._value = self._formula = self._inline = None
        elif local == "v" or local == "f" or (local == "t" and not self._phonetic):
            self._text.parts = []
        elif local == "is":
            self._inline = []
        elif local == "row":
            number = attrib.get("r")
            self._number = int(number) if number else self._number + 1
            self._cells, self._formulas = [], []
            self._text.chars, self._text.row = 0, self._number
        elif local == "rPh":
            self._phonetic += 1

    def end(self, tag: str) -> None:
        local = _local(tag)
        if local == "c":
            self._end_cell()
        elif local == "v":
            self._value = self._text.take()
        elif local == "t":
            if self._text.parts is not None:
                text = self._text.take()
                if self._inline is not None:
                    self._inline.append(text)
        elif local == "f":
            self._formula = "=" + self._text.take()
        elif local == "row":
            if self._cells is not None:
                formulas = frozenset(self._formulas) if self._formulas else _NO_FORMULAS
                self.rows.append((self._number, self._cells, formulas))
            self._cells = None
        elif local == "rPh":
            self._phonetic -= 1

    def _end_cell(self) -> None:
        cells = self._cells
        if cells is None:
            return  # a cell outside any row
        value = self._formula if self._formula is not None else self._cell_value()
        column = len(cells) if self._column is None else self._column
        if column >= self._max_columns:
            if not value.strip():
                return  # formatting beyond the columns read: nothing to keep
            raise RowTooWide(self._number, column, self._max_columns)
        if column > len(cells):
            cells.extend([""] * (column - len(cells)))
        if self._formula is not None:
            self._formulas.append(len(cells))
        cells.append(value)

    def _cell_value(self) -> str:
        if self._inline is not None:
            return _unescape("".join(self._inline))
        raw, kind = self._value, self._kind
        if raw is None:
            return ""
        if kind == "s":
            try:
                text = self._strings[int(raw)]
            except ValueError:
                raise DamagedWorkbook(f"{raw!r} is not a shared string's number") from None
            self._text.chars += len(text)
            if self._text.chars > MAX_ROW_CHARS:
                raise RowTooLarge(self._number, MAX_ROW_CHARS)
            return text
        if kind == "b":
            return "TRUE" if raw == "1" else "FALSE"
        if kind in ("str", "e", "d", "inlineStr"):
            return _unescape(raw)
        return _number(raw)


class _StringsTarget:
    """defusedxml parser target collecting the shared strings (phonetic runs left out)."""

    def __init__(self, table: _StringTable) -> None:
        self._table = table
        self._text = _Text()
        self.data = self._text.data
        self._parts: list[str] = []
        self._phonetic = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        local = _local(tag)
        if local == "si":
            self._parts = []
            self._text.chars = 0
        elif local == "t" and not self._phonetic:
            self._text.parts = []
        elif local == "rPh":
            self._phonetic += 1

    def end(self, tag: str) -> None:
        local = _local(tag)
        if local == "t":
            if self._text.parts is not None:
                self._parts.append(self._text.take())
        elif local == "si":
            self._table.append(_unescape("".join(self._parts)))
        elif local == "rPh":
            self._phonetic -= 1


class _HeadTarget:
    """defusedxml parser target noting what a sheet declares before its rows."""

    def __init__(self) -> None:
        self.dimension: str | None = None
        self.reached_rows = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        local = _local(tag)
        if local == "dimension":
            self.dimension = attrib.get("ref", "")
        elif local == "sheetData":
            self.reached_rows = True


class _ListTarget:
    """defusedxml parser target collecting the attributes of every `tag` element."""

    def __init__(self, tag: str) -> None:
        self._tag = tag
        self.found: list[dict[str, str]] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if _local(tag) == self._tag:
            if len(self.found) == MAX_SHEETS:
                raise DamagedWorkbook(f"more than {MAX_SHEETS} {self._tag} entries")
            self.found.append({_local(key): value for key, value in attrib.items()})


class WorkbookReader:
    """The sheets of an XLSX file, and the rows of one as text cells, within `limits`."""

    def __init__(self, file: IO[bytes], limits: UnpackLimits | None = None) -> None:
        self.limits = limits or UnpackLimits()
        try:
            self._archive = Archive(file, self.limits)
            if "xl/workbook.xml" not in self._archive:
                raise NotAWorkbook(b"opendocument" in self._archive.start_of("mimetype"))
            sheets = self._collect("xl/workbook.xml", "sheet")
            relations = self._collect("xl/_rels/workbook.xml.rels", "Relationship")
        except (zipfile.BadZipFile, ET.ParseError, OSError, EOFError, ValueError) as error:
            raise DamagedWorkbook(str(error)) from None
        targets = {relation.get("Id"): relation.get("Target", "") for relation in relations}
        kinds = {
            relation.get("Type", "").rsplit("/", 1)[-1]: relation.get("Target", "")
            for relation in relations
        }
        self.sheets = [
            Sheet(
                sheet.get("name", ""),
                self._part(targets.get(sheet.get("id"), "")),
                sheet.get("state", "visible") == "visible",
            )
            for sheet in sheets
        ]
        strings = kinds.get("sharedStrings")
        self._strings_part = self._part(strings) if strings else None
        self._strings: _StringTable | None = None

    @staticmethod
    def _part(target: str) -> str:
        return target.lstrip("/") if target.startswith("/") else f"xl/{target}"

    def _parse(self, name: str, target: Any) -> Iterator[None]:
        """Feed part `name` to `target` a chunk at a time, through defusedxml's parser with
        DTDs forbidden; yields after each chunk."""
        parser = _Parser(target)
        try:
            with self._archive.open(name) as part:
                while chunk := part.read(CHUNK):
                    parser.feed(chunk)
                    yield
            parser.close()
        except DefusedXmlException:
            raise DeclaresEntities(name) from None
        yield

    def _collect(self, name: str, tag: str) -> list[dict[str, str]]:
        target = _ListTarget(tag)
        for _ in self._parse(name, target):
            pass
        return target.found

    def check_size(self, sheet: Sheet) -> None:
        """Unpack, without parsing, every part reading `sheet` needs; RefusedWorkbook as soon
        as the limits are passed. A zip bomb is found in the time it takes to unpack the
        limit, before any of it is parsed."""
        self._archive.unpack(dict.fromkeys(filter(None, (self._strings_part, sheet.part))))

    def _shared_strings(self) -> _StringTable:
        if self._strings is None:
            self._strings = _StringTable()
            if self._strings_part:
                for _ in self._parse(self._strings_part, _StringsTarget(self._strings)):
                    pass
        return self._strings

    def dimension(self, sheet: Sheet) -> int | None:
        """The last row number the sheet declares, if it declares one."""
        target = _HeadTarget()
        for _ in self._parse(sheet.part, target):
            if target.dimension is not None or target.reached_rows:
                break
        last = (target.dimension or "").rpartition(":")[2].lstrip("$")
        digits = "".join(character for character in last if character.isdigit())
        return int(digits) if digits else None

    def rows(
        self, sheet: Sheet, max_columns: int = 16_384
    ) -> Iterator[tuple[int, list[str], frozenset[int]]]:
        """(row number, cells as text, indexes of formula cells) for every row present,
        blank ones included; a value beyond `max_columns` columns is refused (RowTooWide).

        A formula cell reads as its formula (=...), whatever value it last had."""
        target = _SheetTarget(self._shared_strings(), max_columns)
        for _ in self._parse(sheet.part, target):
            if target.rows:
                yield from target.rows
                target.rows.clear()

    def close(self) -> None:
        self._archive.close()
