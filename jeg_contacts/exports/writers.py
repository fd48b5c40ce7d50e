"""Writing an export's rows out in each format: CSV, XLSX, JSON Lines and vCard.

Rows come from `services.read_rows` as they are read; each format writes them in chunks, so
memory stays flat whatever the list's size. The cells of a CSV or XLSX file are neutralised
(spreadsheets.neutralise) so that no value is run as a formula.
"""

import io
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale

from jeg_contacts.contacts.models import StakeholderType, Topic
from jeg_contacts.contacts.services import DETAIL_FIELDS
from jeg_contacts.countries import country_name
from jeg_contacts.exports import vcard
from jeg_contacts.exports.services import BATCH_SIZE, COLUMNS, Export, query_columns, read_rows
from jeg_contacts.exports.xlsx import SheetWriter
from jeg_contacts.extensions import db
from jeg_contacts.spreadsheets import TRIGGER_CHARACTERS, CsvWriter, neutralise

SALUTATION_LABELS = {"ms": "Ms", "mr": "Mr", "mx": "Mx", "dr": "Dr", "prof": "Prof."}


class _Names:
    """What an export spells out: types, countries and topic lists, each worked out once."""

    def __init__(self) -> None:
        self.topics = {
            row.id: row
            for row in db.session.execute(
                sa.select(Topic.id, Topic.slug, Topic.label_en, Topic.position)
            )
        }
        with force_locale("en"):
            self.types = {member.value: member.label for member in StakeholderType}
        self._countries: dict[str | None, str | None] = {None: None}
        self._topic_lists: dict[str | None, tuple[list[str], list[str]]] = {}

    def country(self, code: str | None) -> str | None:
        if code not in self._countries:
            self._countries[code] = country_name(code, "en")
        return self._countries[code]

    def topic_slugs(self, raw: str | None) -> list[str]:
        return self.topic_lists(raw)[0]

    def topic_labels(self, raw: str | None) -> list[str]:
        return self.topic_lists(raw)[1]

    def topic_lists(self, raw: str | None) -> tuple[list[str], list[str]]:
        """(slugs, English labels) of a comma-separated list of topic ids, in display order."""
        lists = self._topic_lists.get(raw)
        if lists is None:
            ids = [int(value) for value in raw.split(",")] if raw else []
            topics = sorted((self.topics[i] for i in ids), key=lambda t: (t.position, t.id))
            lists = ([t.slug for t in topics], [t.label_en for t in topics])
            self._topic_lists[raw] = lists
        return lists


def _sources(names: _Names) -> dict[str, tuple[str, Callable[[Any], Any] | None]]:
    """Where each column's value comes from: a column of the query, and how it is spelled
    out (None: as it is)."""
    return {
        "id": ("id", None),
        "email": ("email", None),
        "salutation": ("salutation", SALUTATION_LABELS.get),
        "given_name": ("given_name", None),
        "family_name": ("family_name", None),
        **{detail.name: (detail.name, None) for detail in DETAIL_FIELDS},
        "country": ("country", None),
        "country_name": ("country", names.country),
        "language": ("language", None),
        "organisation": ("organisation_name", None),
        "stakeholder_type": ("stakeholder_type", names.types.get),
        "organisation_country": ("organisation_country", None),
        "organisation_website": ("organisation_website", None),
        "topics": ("topic_ids", names.topic_slugs),
        "topic_names": ("topic_ids", names.topic_labels),
        "status": ("status", None),
        "signed_up": ("created_at", None),
        "confirmed": ("confirmed_at", None),
    }


class XlsxWriter:
    """The one way the app writes XLSX: a SheetWriter whose text cells, the column names
    included, are neutralised as CsvWriter's are."""

    def __init__(
        self, out: IO[bytes], headers: Sequence[str], widths: Sequence[int], title: str
    ) -> None:
        self._sheet = SheetWriter(out, [neutralise(header) for header in headers], widths, title)

    def write_row(self, values: Sequence[Any]) -> None:
        self._sheet.write_row(
            [
                neutralise(value)
                if value.__class__ is str and value and value[0] in TRIGGER_CHARACTERS
                else value
                for value in values
            ]
        )

    def close(self) -> None:
        self._sheet.close()


def _csv_text(value: str | None) -> str:
    return value or ""


# Per kind of column: how a value becomes a CSV cell, an XLSX cell and a JSON value.
_CSV = {
    "text": _csv_text,
    "list": "; ".join,
    "time": lambda value: value or "",  # already text (_timestamp_text)
    "number": str,
}
_XLSX = {
    "text": lambda value: value,
    "list": "; ".join,
    "time": lambda value: value,
    "number": lambda value: value,
}
_JSON = {
    "text": lambda value: value,
    "list": lambda value: value,
    "time": lambda value: value.isoformat() if value else None,
    "number": lambda value: value,
}


def _cells(
    export: Export, kinds: dict[str, Callable], names: _Names, **overrides: tuple
) -> Callable[[sa.Row], list]:
    """A function turning a query row into the export's cells, in column order.

    Each cell costs one or two calls on a value read by position: with 100,000 rows of 15
    columns, anything more per cell shows in the time an export takes."""
    positions = {column.name: index for index, column in enumerate(query_columns(export))}
    sources = _sources(names) | overrides
    pairs = []
    for key in export.columns:
        name, spell = sources[key]
        convert = kinds[COLUMNS[key].kind]
        if spell is not None:
            convert = _compose(spell, convert)
        pairs.append((positions[name], convert))
    return lambda row: [convert(row[index]) for index, convert in pairs]


def _compose(first: Callable, then: Callable) -> Callable:
    return lambda value: then(first(value))


def _csv_chunks(export: Export) -> Iterator[bytes]:
    cells = _cells(export, _CSV, _Names())
    delimiter = export.delimiter
    buffer = io.StringIO()
    if export.format.key == "excel-csv":
        buffer.write("\ufeff")
    writer = CsvWriter(buffer, delimiter)
    writer.writerow(export.headers)
    for number, row in enumerate(read_rows(export), start=1):
        writer.writerow(cells(row))
        if number % BATCH_SIZE == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _jsonl_chunks(export: Export) -> Iterator[bytes]:
    # JSON Lines are read by programs: they get codes where people get labels.
    cells = _cells(
        export,
        _JSON,
        _Names(),
        salutation=("salutation", None),
        stakeholder_type=("stakeholder_type", None),
    )
    lines = []
    for row in read_rows(export):
        lines.append(
            json.dumps(dict(zip(export.columns, cells(row), strict=True)), ensure_ascii=False)
        )
        if len(lines) == BATCH_SIZE:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    yield ("\n".join(lines) + "\n").encode() if lines else b""


def _vcard_chunks(export: Export) -> Iterator[bytes]:
    names = _Names()
    base = current_app.config["BASE_URL"]
    cards = []
    for row in read_rows(export):
        uid = uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/admin/contacts/{row.id}")
        cards.append(
            vcard.card(
                uid=f"urn:uuid:{uid}",
                given_name=row.given_name,
                family_name=row.family_name,
                email=row.email,
                salutation=SALUTATION_LABELS.get(row.salutation, row.salutation),
                job_title=row.job_title,
                phone=row.phone,
                organisation=row.organisation_name,
                website=row.organisation_website,
                country_name=names.country(row.country),
                language=row.language,
                categories=names.topic_lists(row.topic_ids)[1],
                revised=row.updated_at,
            )
        )
        if len(cards) == BATCH_SIZE:
            yield "".join(cards).encode()
            cards.clear()
    yield "".join(cards).encode()


def write_xlsx(export: Export, out: IO[bytes]) -> None:
    cells = _cells(export, _XLSX, _Names())
    widths = [COLUMNS[key].width for key in export.columns]
    sheet = XlsxWriter(out, export.headers, widths, "Contacts")
    for row in read_rows(export):
        sheet.write_row(cells(row))
    sheet.close()


_TEXT_WRITERS = {
    "csv": _csv_chunks,
    "excel-csv": _csv_chunks,
    "jsonl": _jsonl_chunks,
    "vcf": _vcard_chunks,
}


def write_export(export: Export, out: IO[bytes]) -> None:
    """Write the whole export to a binary file object (which need not be seekable)."""
    if export.format.key == "xlsx":
        write_xlsx(export, out)
        return
    for chunk in _TEXT_WRITERS[export.format.key](export):
        out.write(chunk)


def _file_chunks(file: IO[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        while chunk := file.read(size):
            yield chunk
    finally:
        file.close()


def export_body(export: Export) -> Iterator[bytes]:
    """The export as byte chunks for a streamed response.

    Text formats are produced as the response is sent. An XLSX file is a ZIP archive whose
    directory comes last, so it is built first into a temporary file (on disk, not in memory)
    and streamed from there; a failure then still happens before the response starts."""
    if export.format.key != "xlsx":
        return _TEXT_WRITERS[export.format.key](export)
    file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _file_chunks once sent)
    try:
        write_xlsx(export, file)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return _file_chunks(file)
