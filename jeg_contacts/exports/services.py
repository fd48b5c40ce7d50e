"""Exporting contact lists: the audience filter of the directory, in the formats people use.

What an export is (format, columns, order), which rows it reads and its audit entry; `writers`
turns the rows into files. Rows are read in batches of `BATCH_SIZE` from one streaming query
(a server-side cursor on PostgreSQL) and written out as they come, so memory stays flat
whatever the list's size. Erased contacts are never exported, whatever the filter says.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

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
    subscriptions,
)
from jeg_contacts.contacts.services import DETAIL_FIELDS
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow

BATCH_SIZE = 1000


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


def query_columns(export: Export) -> list[Any]:
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
    query = sa.select(*query_columns(export)).outerjoin(
        organisation, organisation.c.id == Contact.organisation_id
    )
    query = filter_contacts(query, export.contact_filter)
    query = query.where(Contact.status != ContactStatus.ERASED)
    return sort_contacts(query, export.sort)


def read_rows(export: Export) -> Iterator[sa.Row]:
    """The export's rows, read `BATCH_SIZE` at a time (a server-side cursor on PostgreSQL).

    Run on the session's connection rather than through the ORM: the rows are plain columns,
    and the ORM's handling of them cost a tenth of a CSV export."""
    statement = _query(export).execution_options(yield_per=BATCH_SIZE)
    result = db.session.connection().execute(statement)
    for batch in result.partitions():
        yield from batch


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
