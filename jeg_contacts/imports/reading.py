"""Reading contact lists to import: CSV in the usual encodings and delimiters, and XLSX.

Everything a hostile or broken file can do ends in `UnreadableFile` with a message meant for
the person who chose the file: what is wrong and what to do about it. Rows are read lazily,
so a large file never sits in memory whole, and what a file may cost is bounded: rows count
towards the limit whether blank or not, one CSV record or XLSX row holds at most a megabyte
of text, and a workbook unpacks within UnpackLimits (unpacking.py).

`open_table` is the way in. It tells a CSV file from a workbook and from what is neither;
csv_tables.py and xlsx_tables.py read each kind, and tables.py holds what they share.
"""

import codecs
import re
from pathlib import Path

from jeg_contacts.imports.csv_tables import DELIMITERS, ENCODINGS, open_csv
from jeg_contacts.imports.tables import (
    MAX_COLUMNS,
    SourceRow,
    Table,
    UnreadableFile,
    megabytes,
)
from jeg_contacts.imports.unpacking import UnpackLimits
from jeg_contacts.imports.xlsx_tables import open_xlsx

# What the rest of the application imports from here.
__all__ = [
    "DELIMITERS",
    "ENCODINGS",
    "SourceRow",
    "Table",
    "UnreadableFile",
    "megabytes",
    "open_table",
]

_SAMPLE_BYTES = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls, .doc, encrypted Office files
_EMAIL_LIKE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
        table = open_xlsx(path, max_rows, unpack_limits or UnpackLimits())
    elif head.startswith(_OLE_MAGIC):
        raise UnreadableFile(
            "This is an old Excel (.xls) file or a password-protected document. Open it in "
            "Excel and save it as “Excel Workbook (.xlsx)” or “CSV UTF-8”, without a password."
        )
    elif head.startswith(b"%PDF"):
        raise UnreadableFile("This is a PDF document. Import a CSV or Excel (.xlsx) file.")
    else:
        table = open_csv(path, head, encoding, delimiter, max_rows)
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
