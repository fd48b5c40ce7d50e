"""CSV that spreadsheet programs open safely: the one way the app writes CSV (exports, the
reports of an import's rejected rows). Every cell goes out neutralised against formula
injection, whoever chose its text; an import takes the neutralising off again."""

import csv
import re
from collections.abc import Sequence
from typing import IO

# Spreadsheet programs may run a cell starting with one of these as a formula (OWASP "CSV
# injection"); such cells get a leading apostrophe, which the import takes off again.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# An international phone number written for people ("+41 22 917 12 34", "+7 (495) 123-45-67")
# is data: with no letter, no second "+" and none of |!" it can name no function, cell, link or
# program, and the spaces or brackets keep LibreOffice, whatever its language, from reading it
# as a number or a date (tests/exports/test_spreadsheet_programs.py). An apostrophe in front
# would be shown to everyone who opens the file. Digits grouped in threes ("+33 123") are read
# as a number in French and Russian, so those are still neutralised.
_PHONE_NUMBER = re.compile(r"\+[0-9][0-9 ().\-]*[ (][0-9 ().\-]*")
_GROUPED_NUMBER = re.compile(r"\+[0-9]{1,3}([ .][0-9]{3})+([.,][0-9]+)?")


def _is_phone_number(value: str) -> bool:
    return bool(_PHONE_NUMBER.fullmatch(value)) and not _GROUPED_NUMBER.fullmatch(value)


def neutralise(value: str) -> str:
    """A cell value spreadsheet programs will not run as a formula (OWASP CSV injection)."""
    if value.startswith(FORMULA_TRIGGERS) and not _is_phone_number(value):
        return "'" + value
    return value


TRIGGER_CHARACTERS = frozenset(FORMULA_TRIGGERS)


class CsvWriter:
    """The one way the app writes CSV (exports, reports of rejected rows): every cell, the
    column names included, goes out neutralised, whoever chose its text.

    Rows are written as plain_csv_line gives them when no cell needs quoting, else by
    csv.writer: the same bytes either way, in a fraction of the time for most rows."""

    def __init__(self, out: IO[str], delimiter: str = ",") -> None:
        self.out = out
        self.delimiter = delimiter
        self._writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        # A cell starting with a trigger starts the line or follows a delimiter.
        self._cell_starts = tuple(delimiter + trigger for trigger in FORMULA_TRIGGERS)

    def writerow(self, values: Sequence[str]) -> None:
        line = plain_csv_line(values, self.delimiter)
        if line is not None and not (
            line[0] in TRIGGER_CHARACTERS or any(start in line for start in self._cell_starts)
        ):
            # Most rows of an export: one look at the joined line instead of one per cell.
            self.out.write(line)
            self.out.write("\r\n")
            return
        cells = [
            neutralise(value) if value and value[0] in TRIGGER_CHARACTERS else value
            for value in values
        ]
        line = plain_csv_line(cells, self.delimiter)
        if line is None:
            self._writer.writerow(cells)
        else:
            self.out.write(line)
            self.out.write("\r\n")


def plain_csv_line(values: list[str], delimiter: str) -> str | None:
    """The CSV line of `values` when no cell needs quoting, else None.

    csv.writer then quotes nothing and writes just this, but takes several times longer to
    find that out, a character at a time: two fifths of a CSV export. The rare row with a
    delimiter, a quote or a line break in a cell, or with one empty cell only, is left to it."""
    line = delimiter.join(values)
    if (
        not line
        or line.count(delimiter) != len(values) - 1
        or '"' in line
        or "\r" in line
        or "\n" in line
    ):
        return None
    return line


def column_letter(index: int) -> str:
    """Spreadsheet column name of a 0-based index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
