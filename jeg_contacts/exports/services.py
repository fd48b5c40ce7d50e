"""Exporting contact lists: the audience filter of the directory, in the formats people use.

Rows are read in batches of `BATCH_SIZE` from one streaming query (a server-side cursor on
PostgreSQL) and written out as they come, so memory stays flat whatever the list's size.
Erased contacts are never exported, whatever the filter says.
"""

import io
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale

from jeg_contacts.audiences.services import (
    ContactFilter,
    describe_filter,
    filter_contacts,
    normalise_sort,
    sort_contacts,
)
from jeg_contacts.audit import services as audit
from jeg_contacts.contacts.models import (
    Contact,
    ContactStatus,
    Organisation,
    StakeholderType,
    Topic,
    subscriptions,
)
from jeg_contacts.contacts.services import DETAIL_FIELDS
from jeg_contacts.countries import country_name
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.exports import vcard
from jeg_contacts.exports.xlsx import SheetWriter
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.spreadsheets import TRIGGER_CHARACTERS, CsvWriter, neutralise

BATCH_SIZE = 1000
SALUTATION_LABELS = {"ms": "Ms", "mr": "Mr", "mx": "Mx", "dr": "Dr", "prof": "Prof."}


@dataclass(frozen=True)
class ExportFormat:
    key: str
    label: str
    extension: str
    mimetype: str
    description: str


FORMATS = {
    export_format.key: export_format
    for export_format in (
        ExportFormat(
            "xlsx",
            "Excel workbook (.xlsx)",
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Opens in Excel, LibreOffice and Numbers; header row frozen, with filters.",
        ),
        ExportFormat(
            "excel-csv",
            "CSV for Excel (.csv)",
            "csv",
            "text/csv; charset=utf-8",
            "UTF-8 with a byte order mark, so Excel shows accents and Cyrillic correctly.",
        ),
        ExportFormat(
            "csv",
            "CSV (.csv)",
            "csv",
            "text/csv; charset=utf-8",
            "Plain UTF-8, for mail merges, databases and other programs.",
        ),
        ExportFormat(
            "vcf",
            "vCard (.vcf)",
            "vcf",
            "text/vcard; charset=utf-8",
            "Address cards for Outlook, Thunderbird and phones (vCard 4.0); "
            "always holds names, organisation, job title, email, phone, country and topics.",
        ),
        ExportFormat(
            "jsonl",
            "JSON Lines (.jsonl)",
            "jsonl",
            "application/jsonl; charset=utf-8",
            "One JSON object per contact, for scripts.",
        ),
    )
}
DEFAULT_FORMAT = "xlsx"
CSV_FORMATS = ("csv", "excel-csv")

DELIMITERS = {",": "Comma (,)", ";": "Semicolon (;)", "\t": "Tab"}
DELIMITER_ARGS = {"comma": ",", "semicolon": ";", "tab": "\t"}
DELIMITER_LABELS = {"comma": "Comma (,)", "semicolon": "Semicolon (;)", "tab": "Tab"}


@dataclass(frozen=True)
class ExportColumn:
    key: str
    header: str
    width: int  # characters, for XLSX
    default: bool = True
    kind: str = "text"  # or "list", "time", "number"


COLUMNS = {
    column.key: column
    for column in (
        ExportColumn("email", "Email", 32),
        ExportColumn("salutation", "Salutation", 10),
        ExportColumn("given_name", "Given name", 18),
        ExportColumn("family_name", "Family name", 20),
        *(
            ExportColumn(detail.name, detail.label, detail.export_width, detail.export_default)
            for detail in DETAIL_FIELDS
        ),
        ExportColumn("country", "Country", 9),
        ExportColumn("country_name", "Country name", 22, default=False),
        ExportColumn("language", "Language", 10),
        ExportColumn("organisation", "Organisation", 40),
        ExportColumn("stakeholder_type", "Type of organisation", 28),
        ExportColumn("organisation_country", "Organisation country", 12),
        ExportColumn("organisation_website", "Organisation website", 30),
        ExportColumn("topics", "Topics", 40, kind="list"),
        ExportColumn("topic_names", "Topic names", 50, default=False, kind="list"),
        ExportColumn("status", "Status", 13),
        ExportColumn("signed_up", "Signed up (UTC)", 17, kind="time"),
        ExportColumn("confirmed", "Confirmed (UTC)", 17, default=False, kind="time"),
        ExportColumn("id", "Contact ID", 11, default=False, kind="number"),
    )
}
DEFAULT_COLUMNS = tuple(key for key, column in COLUMNS.items() if column.default)


@dataclass(frozen=True)
class Export:
    """What to export: which contacts, in which order, as what."""

    contact_filter: ContactFilter = field(default_factory=ContactFilter)
    format: ExportFormat = FORMATS[DEFAULT_FORMAT]
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    delimiter: str = ","
    sort: str = "name"

    @property
    def filename(self) -> str:
        return f"jeg-contacts-{utcnow():%Y-%m-%d}.{self.format.extension}"

    @property
    def headers(self) -> list[str]:
        return [COLUMNS[key].header for key in self.columns]


def exportable(contact_filter: ContactFilter) -> ContactFilter:
    """The filter without any request for erased contacts (they are never exported)."""
    statuses = tuple(s for s in contact_filter.statuses if s is not ContactStatus.ERASED)
    if statuses == contact_filter.statuses:
        return contact_filter
    if contact_filter.statuses and not statuses:
        # Only erased contacts were asked for: match nobody rather than everybody.
        statuses = (ContactStatus.ERASED,)
    return replace(contact_filter, statuses=statuses)


def parse_export(
    contact_filter: ContactFilter,
    *,
    format_key: str | None,
    columns: Sequence[str] = (),
    delimiter: str | None = None,
    sort: str | None = None,
) -> Export:
    """An Export from what a form or the command line gave; ValidationFailed names the field."""
    export_format = FORMATS.get(format_key or DEFAULT_FORMAT)
    if export_format is None:
        raise ValidationFailed("format", f"Choose a format: {', '.join(FORMATS)}.")
    chosen = tuple(dict.fromkeys(columns)) if columns else DEFAULT_COLUMNS
    unknown = [key for key in chosen if key not in COLUMNS]
    if unknown:
        raise ValidationFailed(
            "columns",
            f"Unknown column {unknown[0]!r}; choose from: {', '.join(COLUMNS)}.",
        )
    delimiter = DELIMITER_ARGS.get(delimiter or "", delimiter or ",")
    if delimiter not in DELIMITERS:
        raise ValidationFailed("delimiter", "Choose comma, semicolon or tab as the delimiter.")
    # Keep the column order of the list, whatever order they were ticked in.
    ordered = tuple(key for key in COLUMNS if key in chosen)
    return Export(
        exportable(contact_filter), export_format, ordered, delimiter, normalise_sort(sort)
    )


# --- Reading the contacts -----------------------------------------------------------------


def count_matches(contact_filter: ContactFilter) -> int:
    """How many contacts an export with this filter holds."""
    ids = filter_contacts(sa.select(Contact.id), exportable(contact_filter)).where(
        Contact.status != ContactStatus.ERASED
    )
    return db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery())) or 0


def _on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _topic_ids() -> sa.ScalarSelect:
    """A contact's topic ids as one comma-separated string, computed by the database."""
    if _on_postgresql():
        joined = sa.func.string_agg(sa.cast(subscriptions.c.topic_id, sa.String), ",")
    else:
        # SQLite joins numbers as text itself; a cast costs a tenth of the query's time.
        joined = sa.func.group_concat(subscriptions.c.topic_id, ",")
    return sa.select(joined).where(subscriptions.c.contact_id == Contact.id).scalar_subquery()


def _timestamp_text(column: Any) -> Any:
    """A UTC timestamp as text, "2026-11-05 14:03:59", written by the database.

    For CSV: reading 100,000 timestamps as datetimes only to print them again took a sixth of
    the export's time."""
    if _on_postgresql():
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS")
    # SQLite holds them as UTC text already, "2026-11-05 14:03:59.123456".
    return sa.func.substr(sa.type_coerce(column, sa.String), 1, 19)


def _query_columns(export: Export) -> list[Any]:
    """The columns an export reads, in a fixed order; timestamps, the costliest values to
    read, only when a column shows them."""
    wanted = set(export.columns)
    as_text = export.format.key in CSV_FORMATS

    def timestamp(column: Any, needed: bool, name: str) -> Any:
        if not needed:
            return sa.null().label(name)
        return (_timestamp_text(column) if as_text else column).label(name)

    organisation = _EXPORT_ORGANISATION
    return [
        Contact.id,
        Contact.salutation,
        Contact.given_name,
        Contact.family_name,
        Contact.email,
        *(getattr(Contact, detail.name) for detail in DETAIL_FIELDS),
        Contact.country,
        Contact.language,
        # Plain strings: converting every value to its enum would cost more than the rest.
        sa.type_coerce(Contact.status, sa.String).label("status"),
        organisation.c.name.label("organisation_name"),
        sa.type_coerce(organisation.c.stakeholder_type, sa.String).label("stakeholder_type"),
        organisation.c.country.label("organisation_country"),
        organisation.c.website.label("organisation_website"),
        _topic_ids().label("topic_ids"),
        timestamp(Contact.created_at, "signed_up" in wanted, "created_at"),
        timestamp(Contact.confirmed_at, "confirmed" in wanted, "confirmed_at"),
        timestamp(
            Contact.updated_at, export is not None and export.format.key == "vcf", "updated_at"
        ),
    ]


# Joined under another name, so sorting by organisation can still join the table itself.
_EXPORT_ORGANISATION = Organisation.__table__.alias("export_organisation")


def _query(export: Export) -> sa.Select:
    """One row per exported contact with everything its columns need, in the export's order.

    Organisation and topics come in the same statement (a join and a correlated aggregate),
    so an export is one streaming query rather than one per batch."""
    organisation = _EXPORT_ORGANISATION
    query = sa.select(*_query_columns(export)).outerjoin(
        organisation, organisation.c.id == Contact.organisation_id
    )
    query = filter_contacts(query, export.contact_filter)
    query = query.where(Contact.status != ContactStatus.ERASED)
    return sort_contacts(query, export.sort)


def _rows(export: Export) -> Iterator[sa.Row]:
    """The export's rows, read `BATCH_SIZE` at a time (a server-side cursor on PostgreSQL).

    Run on the session's connection rather than through the ORM: the rows are plain columns,
    and the ORM's handling of them cost a tenth of a CSV export."""
    statement = _query(export).execution_options(yield_per=BATCH_SIZE)
    result = db.session.connection().execute(statement)
    for batch in result.partitions():
        yield from batch


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


# --- Writing them -------------------------------------------------------------------------


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
                "'" + value
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
    positions = {column.name: index for index, column in enumerate(_query_columns(export))}
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
    for number, row in enumerate(_rows(export), start=1):
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
    for row in _rows(export):
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
    for row in _rows(export):
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
    for row in _rows(export):
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


def record_export(export: Export, count: int, via: str) -> None:
    """Write the export to the audit log: contact lists are personal data."""
    audit.record(
        "contacts.exported",
        "contact",
        None,
        f"Exported {count:,} contact{'s' if count != 1 else ''} as {export.format.label} ({via})",
        {
            "format": export.format.key,
            "rows": count,
            "filter": describe_filter(export.contact_filter),
            "criteria": export.contact_filter.to_args(),
            "columns": list(export.columns),
            "sort": export.sort,
            "via": via,
        },
    )


def start_export(export: Export, via: str) -> int:
    """Count the rows and audit the export, before any of it is written; returns the count.

    The caller commits, so the audit entry is durable before the first row leaves."""
    count = count_matches(export.contact_filter)
    record_export(export, count, via)
    db.session.flush()
    return count
