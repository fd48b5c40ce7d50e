"""Erasure and the files of imports: an upload that holds an erased person's address goes.

The folder of an upload (uploads.py, jobs.py) keeps the file as sent, and after a dry run or
an import the rows it showed (preview.json) and the rows it rejected (the reports), names and
addresses included, for up to a day. Rather than rewrite a spreadsheet cell by cell, the whole
upload is deleted: staff can send the file again, and the erased address is then refused.
"""

import shutil
import zipfile
from collections.abc import Collection
from contextlib import closing
from itertools import chain
from pathlib import Path

from flask import current_app

from jeg_contacts.imports import uploads
from jeg_contacts.imports.reading import UnreadableFile

_CHUNK = 1024 * 1024


def discard_uploads_holding(addresses: Collection[str]) -> int:
    """Delete every kept upload whose file, preview or reports hold one of `addresses`,
    whoever uploaded it and whatever state it is in; returns how many were deleted.

    A job still running on such an upload loses its folder and stops there (jobs.py records
    what it can), as when its file is discarded."""
    root = Path(current_app.instance_path) / "imports"
    needles = [address.casefold().encode() for address in addresses if address]
    if not needles or not root.is_dir():
        return 0
    deleted = 0
    for folder in root.iterdir():
        if folder.is_dir() and _holds(folder, needles):
            shutil.rmtree(folder, ignore_errors=True)
            deleted += 1
    return deleted


def _holds(folder: Path, needles: list[bytes]) -> bool:
    """Whether a file of the upload holds one of the (ASCII, case-folded) addresses."""
    for path in folder.iterdir():
        if not path.is_file():
            continue
        try:
            if path.name == "upload" and zipfile.is_zipfile(path):
                if _workbook_holds(folder, needles):
                    return True
            elif _bytes_hold(path, needles):
                return True
        except OSError:  # deleted meanwhile (discarded, swept away)
            continue
    return False


def _bytes_hold(path: Path, needles: list[bytes]) -> bool:
    """A search of the raw bytes, a chunk at a time. Addresses are stored in ASCII and every
    encoding an import reads (UTF-8, Windows-1251, Latin-1) writes ASCII as ASCII, so this
    finds them in a CSV file as in the JSON and CSV files made from it."""
    overlap = max(map(len, needles)) - 1
    tail = b""
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            text = tail + chunk.lower()
            if any(needle in text for needle in needles):
                return True
            tail = text[-overlap:] if overlap else b""
    return False


def _workbook_holds(folder: Path, needles: list[bytes]) -> bool:
    """Whether a cell of an uploaded workbook holds one of the addresses; a workbook that
    cannot be read is taken to hold them (it could not be imported anyway)."""
    note = uploads.read_json(folder / "upload.json")
    if not isinstance(note, dict):
        return True
    try:
        upload = uploads.Upload(
            **{key: value for key, value in note.items() if key in uploads.Upload.__annotations__}
        )
        wanted = [needle.decode() for needle in needles]
        table = upload.open_table()
        with closing(table.rows()) as rows:
            for cells in chain([table.header], (row.cells for row in rows)):
                for cell in cells:
                    folded = cell.casefold()
                    if any(address in folded for address in wanted):
                        return True
    except (UnreadableFile, TypeError, ValueError):
        return True
    return False
