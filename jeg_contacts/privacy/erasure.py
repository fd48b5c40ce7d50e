"""Erasure and the files of imports: an upload that holds an erased person's address goes.

The folder of an upload (uploads.py) keeps the file as sent and the rows it rejected (the
reports); the rows of its jobs (jobs.py) keep the rows a dry run showed; names and addresses
included, for up to a day. Rather than rewrite a spreadsheet cell by cell, the whole upload
is deleted, with its jobs' rows: staff can send the file again, and the erased address is
then refused.
"""

import json
import shutil
import zipfile
from collections.abc import Collection
from contextlib import closing
from itertools import chain
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from jeg_contacts.extensions import db
from jeg_contacts.imports import uploads
from jeg_contacts.imports.reading import UnreadableFile
from jeg_contacts.jobs.models import Job

_CHUNK = 1024 * 1024


def discard_uploads_holding(addresses: Collection[str]) -> int:
    """Delete every kept upload whose file, preview or reports hold one of `addresses`,
    whoever uploaded it and whatever state it is in; returns how many were deleted.

    A job still running on such an upload loses its folder and fails there, as when its file
    is discarded. Runs after the erasure's commit, in a transaction of its own."""
    root = Path(current_app.instance_path) / "imports"
    needles = [address.casefold().encode() for address in addresses if address]
    if not needles:
        return 0
    holding = _previews_holding(needles)
    if root.is_dir():
        holding |= {
            folder.name for folder in root.iterdir() if folder.is_dir() and _holds(folder, needles)
        }
    with db.engine.begin() as connection:
        for token in holding:
            connection.execute(_forget(token))
    for token in holding:
        shutil.rmtree(root / token, ignore_errors=True)
    return len(holding)


def _previews_holding(needles: list[bytes]) -> set[str]:
    """The uploads whose jobs' results (a dry run's rows) hold one of the addresses."""
    holding = set()
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.select(Job.subject, Job.result).where(
                Job.subject.like("upload:%"), Job.result.is_not(None)
            )
        )
        for subject, result in rows:
            text = json.dumps(result).casefold().encode()
            if any(needle in text for needle in needles):
                holding.add(subject.removeprefix("upload:"))
    return holding


def _forget(token: str) -> sa.Delete:
    # Every row about the upload: a running job's own completion then finds nothing to finish.
    return sa.delete(Job).where(Job.subject == uploads.subject_of(token))


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
