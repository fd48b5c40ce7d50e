"""Importing contact lists: every row checked with the sign-up rules (rows.py), then the valid
ones written with set-based inserts, a chunk at a time.

Every row of the file is checked before anything is written, so a rejected row changes nothing
and the write transaction stays short; the caller commits once at the end, so a file that turns
out to be unreadable half-way leaves the database as it was. A dry run is the same pass
without the writes.
"""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from itertools import islice
from operator import itemgetter
from typing import IO, Any

import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import selectinload

from jeg_contacts.audit import services as audit
from jeg_contacts.audit.models import AuditEntry

# Who imports: a staff account, or the command line.
from jeg_contacts.audit.services import Actor
from jeg_contacts.contacts.mail import send_confirmation
from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    ErasedAddress,
    Organisation,
    search_key,
    subscriptions,
)
from jeg_contacts.contacts.services import (
    DETAIL_FIELDS,
    consent_basis,
    consent_values,
    describe_subscription,
    email_hash,
    new_link_secret,
    record_consent,
    snapshot_values,
    subscription_summary,
)
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.imports import limits
from jeg_contacts.imports.mapping import (
    ImportField,
    ImportSettings,
    Vocabulary,
    mapping_problems,
)
from jeg_contacts.imports.reading import SourceRow, Table, UnreadableFile
from jeg_contacts.imports.rows import Base, CheckedRow, check_row
from jeg_contacts.spreadsheets import FORMULA_TRIGGERS, CsvWriter
from jeg_contacts.text import EmailNormaliser, email_key

CHUNK_SIZE = 1000
# A cell longer than this is refused before any rule looks at it (the longest field is 300).
MAX_CELL_CHARS = 1000
EXAMPLES_PER_OUTCOME = 100
_TRIGGERS = frozenset(FORMULA_TRIGGERS)


class Outcome(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    SKIP = "skip"
    REJECT = "reject"


@dataclass(slots=True)
class RowResult:
    number: int
    outcome: Outcome
    email: str
    name: str = ""
    organisation: str = ""
    detail: str = ""  # why a row is rejected or skipped, what an update changes
    contact_id: int | None = None


@dataclass
class ImportSummary:
    counts: Counter = field(default_factory=Counter)
    examples: dict[Outcome, list[RowResult]] = field(default_factory=dict)
    new_organisations: int = 0
    pending: int = 0  # new contacts to be emailed a confirmation link
    emails_sent: int = 0
    emails_held: int = 0  # pending contacts whose address had its emails for the day

    @property
    def rows(self) -> int:
        return sum(self.counts[outcome] for outcome in Outcome)

    def count(self, outcome: Outcome) -> int:
        return self.counts[outcome]

    def expected(self) -> dict[str, int]:
        """What a commit must find again to go ahead (the dry run's counts)."""
        return {outcome.value: self.counts[outcome] for outcome in Outcome} | {
            "pending": self.pending
        }


class PreviewOutdated(Exception):
    """The file would now import differently from the dry run that was confirmed."""

    def __init__(self, summary: ImportSummary) -> None:
        super().__init__("the import would now give other numbers")
        self.summary = summary


class TooManyPending(Exception):
    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"Every new pending contact is emailed a confirmation link; at most {limit:,} "
            f"per import, and this file has {count:,}. Split the file, or import them as "
            "active, saying why the people on the list agreed to be contacted."
        )
        self.message = str(self)


BASIS_NEEDED = (
    "Say why the people on this list agreed to be contacted (for example: “they asked for JEG "
    "news at the 2025 workshop”). It is kept in each new contact's consent log; without it, "
    "import them as pending, so that each confirms by email."
)


def import_basis(settings: ImportSettings) -> str:
    """The statement of why the people on the list agreed to be contacted, on one line; an
    import as active needs one (ValidationFailed on "basis"), a pending one keeps none."""
    if settings.status is not ContactStatus.ACTIVE:
        return ""
    return consent_basis(settings.basis, needed=BASIS_NEEDED)


def consent_source(actor: Actor, file_name: str) -> str:
    return f"imported by {actor.label} from {file_name}"[:200]


@dataclass(slots=True)
class _Existing:
    id: int
    base: Base
    snapshot: dict[str, Any]


def _known_organisations() -> dict[tuple[str, str], sa.Row]:
    """Every organisation by (normalised name, country)."""
    return {
        (row.normalised_name, row.country or ""): row
        for row in db.session.execute(
            sa.select(
                Organisation.id,
                Organisation.name,
                Organisation.normalised_name,
                Organisation.stakeholder_type,
                Organisation.country,
                Organisation.website,
            )
        )
    }


def _insert_rows(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` with one executemany, passing their values to the driver as they are.

    SQLAlchemy's insert() runs every value of every row through its column's type first; for
    the million values of a 100,000-row import that took longer than the database's own work.
    So `rows` hold what the driver takes: enum values as strings, and constant values of
    other types through `Importer._stored`."""
    if not rows:
        return
    connection = db.session.connection()
    compiled = sa.insert(table).compile(dialect=connection.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        rows = list(map(itemgetter(*compiled.positiontup), rows))
    connection.exec_driver_sql(compiled.string, rows)


def _batched(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    while batch := list(islice(rows, size)):
        yield batch


class Importer:
    """One pass over a table: check each row, and with `write`, add or update contacts."""

    def __init__(
        self,
        table: Table,
        settings: ImportSettings,
        *,
        file_name: str,
        actor: Actor,
        write: bool = False,
        on_row: Callable[[RowResult], None] | None = None,
        report: IO[str] | None = None,
        progress: Callable[[int], None] | None = None,
        on_writing: Callable[[], None] | None = None,
        max_rows: int | None = None,
    ) -> None:
        self.table = table
        self.settings = settings
        self.file_name = file_name
        self.actor = actor
        self.write = write
        self.on_row = on_row
        self.progress = progress
        self.on_writing = on_writing  # called once every row is checked, before the writes
        self.max_rows = max_rows or limits.max_rows()
        self.summary = ImportSummary(examples={outcome: [] for outcome in Outcome})
        self.vocabulary = Vocabulary()
        self.columns = {
            ImportField(name).value: index for index, name in enumerate(settings.mapping) if name
        }
        self.defaults = Base(
            stakeholder_type=settings.default_type,
            language=settings.default_language,
            topic_ids=tuple(
                topic_id
                for topic_id in settings.default_topic_ids
                if topic_id in self.vocabulary.topics and self.vocabulary.topics[topic_id].active
            ),
        )
        self.seen: dict[str, int] = {}  # email key -> first row with it
        self.organisations = _known_organisations()
        self.planned_organisations: dict[tuple[str, str], CheckedRow] = {}
        self.organisation_ids: dict[tuple[str, str], int] = {
            key: row.id for key, row in self.organisations.items()
        }
        self.websites_filled: set[int] = set()
        # With `write`, each chunk's creates and updates, written only once every row is
        # checked: SQLite holds its single write lock from the first write to the commit, so
        # checking first keeps that stretch to the writes themselves (seconds, not a minute).
        self.planned_writes: list[
            tuple[list[CheckedRow], list[tuple[CheckedRow, _Existing, dict[str, list]]]]
        ] = []
        self.writing = False  # every row checked, the planned changes being written
        self.now = utcnow()
        self.source = consent_source(actor, file_name)
        self.basis = ""  # checked by run()
        # The file's own column names and cells go back to staff: through the neutralising
        # writer, so that none of them runs as a formula when the report is opened.
        self.report = CsvWriter(report) if report is not None else None
        if self.report is not None:
            self.report.writerow(["Row", "Problems", *table.header])

    def run(self, expected: dict[str, int] | None = None) -> ImportSummary:
        """Go through every row; with `expected`, refuse (PreviewOutdated) other numbers."""
        problems = mapping_problems(self.settings, self.table.header)
        if problems:
            raise ValidationFailed("mapping", " ".join(problems))
        with force_locale("en"):
            self.basis = import_basis(self.settings)
            if expected is not None and self.write:
                self._check_pending_limit(expected.get("pending", 0))
            processed = 0
            for chunk in _batched(self.table.rows(), CHUNK_SIZE):
                processed += len(chunk)
                if processed > self.max_rows:
                    raise UnreadableFile(
                        f"The file has more than {self.max_rows:,} contacts; split it into "
                        "smaller files."
                    )
                self._chunk(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
        self.summary.new_organisations = len(self.planned_organisations)
        if expected is not None and self.summary.expected() != expected:
            raise PreviewOutdated(self.summary)
        if self.write:
            self._check_pending_limit(self.summary.pending)
            self.writing = True
            if self.on_writing is not None:
                self.on_writing()
            self._adopt_organisations_added_meanwhile()
            for creates, updates in self.planned_writes:
                self._write_creates(creates)
                self._write_updates(updates)
            self._audit_import()
        return self.summary

    def _confirms(self, checked: CheckedRow) -> bool:
        """Whether a new contact is emailed a confirmation link: when the import asks for
        pending contacts (a row the file marks pending in an active import stays pending,
        as it was where it came from, without an email)."""
        return (
            checked.status is ContactStatus.PENDING
            and self.settings.status is ContactStatus.PENDING
        )

    def _check_pending_limit(self, creating: int) -> None:
        limit = limits.max_pending()
        if creating > limit:
            raise TooManyPending(creating, limit)

    # -- One chunk ---------------------------------------------------------------------------

    def _values(self, row: SourceRow) -> tuple[dict[str, str], list[str]]:
        """The mapped cells of a row, and problems with the cells themselves."""
        values, problems = {}, []
        cells, width = row.cells, len(row.cells)
        for name, index in self.columns.items():
            cell = cells[index] if index < width else ""
            if not cell:
                continue
            if len(cell) > MAX_CELL_CHARS:
                problems.append(
                    f"{ImportField(name).label}: the cell in column “{self.table.header[index]}” "
                    f"holds {len(cell):,} characters; at most {MAX_CELL_CHARS:,} are read."
                )
                continue
            first = cell[0]
            if first == "=" or index in row.formulas:
                problems.append(
                    f"{ImportField(name).label}: the cell in column “{self.table.header[index]}” "
                    f"is a spreadsheet formula ({cell[:40]}); formulas are not imported. "
                    "Paste the values instead."
                )
                continue
            if first == "'" and cell[1:2] in _TRIGGERS:
                cell = cell[1:]  # an exported cell neutralised against formula injection
            values[name] = cell
        return values, problems

    def _shape_problem(self, row: SourceRow) -> str | None:
        width, count = len(self.table.header), len(row.cells)
        cells = f"{count} cell{'s' if count != 1 else ''}"
        if any(cell.strip() for cell in row.cells[width:]):
            return (
                f"The row has {cells} where the header has {width} columns; a delimiter or "
                "quote is probably misplaced. Nothing from this row was imported."
            )
        if self.table.kind == "csv" and count < width:
            if any("\n" in cell for cell in row.cells):
                return (
                    f"The row has {cells} where the header has {width} columns, and runs over "
                    'several lines: a quote (") opened in it is probably never closed. Nothing '
                    "from this row was imported."
                )
            return (
                f"The row has {cells} where the header has {width} columns; it may have been "
                "split over two lines. Nothing from this row was imported."
            )
        return None

    @cached_property
    def _normalise_email(self) -> EmailNormaliser:
        """normalise_email, checking each domain of the file once."""
        return EmailNormaliser()

    def _chunk(self, rows: list[SourceRow]) -> None:
        prepared = []
        keys = set()
        for row in rows:
            shape = self._shape_problem(row)
            if shape is not None:
                prepared.append((row, {}, [shape], None, None))
                continue
            values, problems = self._values(row)
            key = None
            try:
                email = self._normalise_email(values.get("email", ""))
            except ValidationFailed as error:
                email = error
            else:
                key = email_key(email)
                keys.add(key)
            prepared.append((row, values, problems, key, email))
        existing = self._existing(keys)
        erased = self._erased(keys)
        creates: list[CheckedRow] = []
        updates: list[tuple[CheckedRow, _Existing, dict[str, list]]] = []
        for row, values, cell_problems, key, email in prepared:
            result = self._decide(row, values, cell_problems, key, email, existing, erased)
            if isinstance(result, tuple):
                checked, outcome, extra = result
                if outcome is Outcome.CREATE:
                    creates.append(checked)
                elif outcome is Outcome.UPDATE:
                    updates.append((checked, *extra))
        if self.write:
            self.planned_writes.append((creates, updates))

    def _decide(self, row, values, cell_problems, key, normalised, existing, erased):
        email = values.get("email", "").strip()
        name = " ".join(
            part
            for part in (values.get("given_name", ""), values.get("family_name", ""))
            if part.strip()
        ) or values.get("full_name", "")
        organisation = values.get("organisation", "")
        if key is not None and key in self.seen:
            return self._reject(
                row,
                email,
                name,
                organisation,
                [f"Same email address as row {self.seen[key]}; only the first is imported."],
            )
        if key is not None:
            self.seen[key] = row.number
        if cell_problems:
            return self._reject(row, email, name, organisation, cell_problems)
        if key is not None and key in erased:
            return self._reject(
                row,
                email,
                name,
                organisation,
                [
                    "Email: the owner of this address asked for their data to be erased; it "
                    "cannot be imported again. They can sign up again themselves."
                ],
            )
        match = existing.get(key) if key is not None else None
        if match is not None and not self.settings.update_existing:
            self._emit(
                RowResult(
                    row.number,
                    Outcome.SKIP,
                    email,
                    name,
                    organisation,
                    "Already in the directory; left as it is.",
                    match.id,
                )
            )
            return None
        checked = check_row(
            values,
            match.base if match is not None else self.defaults,
            self.vocabulary,
            number=row.number,
            import_status=self.settings.status,
            email=normalised,
        )
        if isinstance(checked, list):
            return self._reject(row, email, name, organisation, checked)
        name = f"{checked.given_name} {checked.family_name}"
        organisation = self._organisation_name(checked)
        if match is None:
            self._plan_organisation(checked)
            if self._confirms(checked):
                self.summary.pending += 1
            self._emit(
                RowResult(
                    row.number,
                    Outcome.CREATE,
                    checked.email,
                    name,
                    organisation,
                    f"New contact, {checked.status.value}",
                )
            )
            return checked, Outcome.CREATE, None
        after = self._snapshot(checked, match.base.archived_topic_ids)
        changes = audit.changes_between(match.snapshot, after)
        if not changes:
            self._emit(
                RowResult(
                    row.number,
                    Outcome.UNCHANGED,
                    checked.email,
                    name,
                    organisation,
                    "Already in the directory with the same details.",
                    match.id,
                )
            )
            return None
        self._plan_organisation(checked)
        self._emit(
            RowResult(
                row.number,
                Outcome.UPDATE,
                checked.email,
                name,
                organisation,
                "Changes " + ", ".join(changed.replace("_", " ") for changed in changes),
                match.id,
            )
        )
        return checked, Outcome.UPDATE, (match, changes)

    def _reject(self, row, email, name, organisation, problems: list[str]) -> None:
        self._emit(
            RowResult(row.number, Outcome.REJECT, email, name, organisation, " ".join(problems))
        )
        if self.report is not None:
            cells = [
                cell if len(cell) <= MAX_CELL_CHARS else cell[:MAX_CELL_CHARS] + "…"
                for cell in row.cells
            ]
            self.report.writerow([str(row.number), " ".join(problems), *cells])

    def _emit(self, result: RowResult) -> None:
        self.summary.counts[result.outcome] += 1
        examples = self.summary.examples[result.outcome]
        if len(examples) < EXAMPLES_PER_OUTCOME:
            examples.append(result)
        if self.on_row is not None:
            self.on_row(result)

    # -- Organisations -------------------------------------------------------------------------

    def _adopt_organisations_added_meanwhile(self) -> None:
        """Use, rather than add again, the new organisations of the file that someone added
        while its rows were checked (a sign-up, for instance)."""
        for key, known in _known_organisations().items():
            if key in self.planned_organisations:
                self.organisations[key] = known
                self.organisation_ids[key] = known.id

    def _organisation_name(self, checked: CheckedRow) -> str:
        known = self.organisations.get(checked.organisation_key)
        if known is not None:
            return known.name
        planned = self.planned_organisations.get(checked.organisation_key)
        return planned.organisation_name if planned else checked.organisation_name

    def _plan_organisation(self, checked: CheckedRow) -> None:
        key = checked.organisation_key
        if key not in self.organisations and key not in self.planned_organisations:
            self.planned_organisations[key] = checked

    # -- Looking up what exists ------------------------------------------------------------

    def _erased(self, keys: set[str]) -> set[str]:
        if not keys:
            return set()
        hashes = {email_hash(key): key for key in keys}
        found = db.session.scalars(
            sa.select(ErasedAddress.email_hash).where(ErasedAddress.email_hash.in_(hashes))
        )
        return {hashes[value] for value in found}

    def _existing(self, keys: set[str]) -> dict[str, _Existing]:
        if not keys:
            return {}
        rows = db.session.execute(
            sa.select(
                Contact.id,
                Contact.email_key,
                Contact.email,
                Contact.salutation,
                Contact.given_name,
                Contact.family_name,
                *(getattr(Contact, detail.name) for detail in DETAIL_FIELDS),
                Contact.country,
                Contact.language,
                Contact.status,
                Organisation.name,
                Organisation.stakeholder_type,
                Organisation.country.label("organisation_country"),
                Organisation.website,
            )
            .outerjoin(Organisation, Contact.organisation_id == Organisation.id)
            .where(Contact.email_key.in_(keys))
        ).all()
        topics: dict[int, list[int]] = {row.id: [] for row in rows}
        if rows and self.settings.update_existing:
            for contact_id, topic_id in db.session.execute(
                sa.select(subscriptions.c.contact_id, subscriptions.c.topic_id).where(
                    subscriptions.c.contact_id.in_(topics)
                )
            ):
                topics[contact_id].append(topic_id)
        found = {}
        for row in rows:
            topic_ids = sorted(topics[row.id], key=self.vocabulary.topic_order)
            active = tuple(i for i in topic_ids if self.vocabulary.topics[i].active)
            base = Base(
                organisation_name=row.name or "",
                stakeholder_type=row.stakeholder_type.value if row.stakeholder_type else "",
                organisation_country=row.organisation_country or "",
                organisation_website=row.website or "",
                salutation=row.salutation or "",
                given_name=row.given_name,
                family_name=row.family_name,
                details={detail.name: row._mapping[detail.name] or "" for detail in DETAIL_FIELDS},
                country=row.country or "",
                language=row.language,
                topic_ids=active,
                archived_topic_ids=tuple(i for i in topic_ids if i not in active),
                status=row.status,
            )
            snapshot = snapshot_values(
                row._mapping,
                status=row.status,
                organisation=row.name,
                organisation_country=row.organisation_country,
                topic_slugs=(self.vocabulary.topics[i].slug for i in topic_ids),
            )
            found[row.email_key] = _Existing(row.id, base, snapshot)
        return found

    def _snapshot(self, checked: CheckedRow, archived: Iterable[int]) -> dict[str, Any]:
        """The audited fields (contacts.services.audit_snapshot) after the row's changes."""
        return snapshot_values(
            {
                "salutation": checked.salutation,
                "given_name": checked.given_name,
                "family_name": checked.family_name,
                "email": checked.email,
                **checked.details,
                "country": checked.country,
                "language": checked.language,
            },
            status=checked.status,
            organisation=self._organisation_name(checked),
            organisation_country=checked.organisation_country,
            topic_slugs=(self.vocabulary.topics[i].slug for i in (*checked.topic_ids, *archived)),
        )

    # -- Writing -------------------------------------------------------------------------------

    def _organisation_id(self, checked: CheckedRow) -> int:
        return self.organisation_ids[checked.organisation_key]

    def _write_organisations(self, rows: list[CheckedRow]) -> None:
        new: dict[tuple[str, str], CheckedRow] = {}
        for checked in rows:
            key = checked.organisation_key
            if key in self.organisation_ids:
                known = self.organisations.get(key)
                if (
                    known is not None
                    and not known.website
                    and checked.organisation_website
                    and known.id not in self.websites_filled
                ):
                    # As find_or_create_organisation: a known organisation gains a website
                    # it did not have.
                    db.session.execute(
                        sa.update(Organisation.__table__)
                        .where(Organisation.id == known.id, Organisation.website.is_(None))
                        .values(website=checked.organisation_website, updated_at=self.now)
                    )
                    self.websites_filled.add(known.id)
                continue
            new.setdefault(key, self.planned_organisations.get(key, checked))
        if not new:
            return
        table = Organisation.__table__
        inserted = db.session.execute(
            sa.insert(table).returning(table.c.id, table.c.normalised_name, table.c.country),
            [
                {
                    "name": checked.organisation_name,
                    "normalised_name": key[0],
                    "stakeholder_type": checked.stakeholder_type,
                    "country": key[1],
                    "website": checked.organisation_website,
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                for key, checked in new.items()
            ],
        ).all()
        for organisation_id, normalised_name, country in inserted:
            self.organisation_ids[(normalised_name, country or "")] = organisation_id

    def _stored(self, column: sa.Column, value: Any) -> Any:
        """`value` as `column`'s type hands it to the driver (for _insert_rows)."""
        dialect = db.session.get_bind().dialect
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process is not None else value

    def _write_creates(self, rows: list[CheckedRow]) -> None:
        if not rows:
            return
        self._write_organisations(rows)
        contacts = Contact.__table__
        # Every row is written at the same moment.
        now = self._stored(contacts.c.created_at, self.now)
        confirmed = now if self.settings.status is ContactStatus.ACTIVE else None
        _insert_rows(
            contacts,
            [
                {
                    "salutation": checked.salutation,
                    "given_name": checked.given_name,
                    "family_name": checked.family_name,
                    "email": checked.email,
                    "email_key": checked.key,
                    **checked.details,
                    "country": checked.country,
                    "language": checked.language,
                    "organisation_id": self._organisation_id(checked),
                    "status": checked.status.value,
                    "link_secret": new_link_secret(),
                    "created_at": now,
                    "confirmed_at": None if checked.status is ContactStatus.PENDING else confirmed,
                    "updated_at": now,
                    "search_name": search_key(f"{checked.given_name} {checked.family_name}"),
                    "version": 1,
                }
                for checked in rows
            ],
        )
        ids = dict(
            db.session.execute(
                sa.select(Contact.email_key, Contact.id).where(
                    Contact.email_key.in_([checked.key for checked in rows])
                )
            ).all()
        )
        no_changes = self._stored(AuditEntry.__table__.c.changes, None)
        user_id = self.actor.user.id if self.actor.user is not None else None
        basis = f"basis: {self.basis}; " if self.basis else ""
        # One event: who brought them in, from which file, and on what basis. Nothing that
        # reads as their own sign-up or confirmation, and no privacy notice: they saw none.
        # A pending contact's confirmation, if it comes, is recorded then.
        imported = consent_values(ConsentAction.IMPORTED, self.source)
        imported["action"] = imported["action"].value
        subscription_rows, consent_rows, audit_rows, pending = [], [], [], []
        for checked in rows:
            contact_id = ids[checked.key]
            detail = subscription_summary(
                (self.vocabulary.topics[i].slug for i in checked.topic_ids), checked.language
            )
            subscription_rows.extend(
                {"contact_id": contact_id, "topic_id": topic_id, "subscribed_at": now}
                for topic_id in checked.topic_ids
            )
            consent_rows.append(
                imported
                | {
                    "contact_id": contact_id,
                    "at": now,
                    "detail": f"{basis}status: {checked.status.value}; {detail}",
                }
            )
            audit_rows.append(
                audit.entry_values(
                    self.actor,
                    "contact.created",
                    "contact",
                    contact_id,
                    f"Imported from {self.file_name} as {checked.status.value}",
                )
                | {"at": now, "user_id": user_id, "changes": no_changes}
            )
            if self._confirms(checked):
                pending.append(contact_id)
        _insert_rows(subscriptions, subscription_rows)
        _insert_rows(ConsentEvent.__table__, consent_rows)
        _insert_rows(AuditEntry.__table__, audit_rows)
        if pending:
            for contact in db.session.scalars(sa.select(Contact).where(Contact.id.in_(pending))):
                if send_confirmation(contact):
                    self.summary.emails_sent += 1
                else:
                    self.summary.emails_held += 1

    def _write_updates(self, rows: list[tuple[CheckedRow, _Existing, dict[str, list]]]) -> None:
        if not rows:
            return
        self._write_organisations([checked for checked, _match, _changes in rows])
        contacts = {
            contact.id: contact
            for contact in db.session.scalars(
                sa.select(Contact)
                .where(Contact.id.in_([match.id for _checked, match, _changes in rows]))
                .options(selectinload(Contact.organisation), selectinload(Contact.topics))
            )
        }
        for checked, match, changes in rows:
            contact = contacts[match.id]
            contact.organisation = db.session.get(Organisation, self._organisation_id(checked))
            contact.salutation = checked.salutation
            contact.given_name = checked.given_name
            contact.family_name = checked.family_name
            for name, value in checked.details.items():
                setattr(contact, name, value)
            contact.country = checked.country
            contact.language = checked.language
            contact.email = checked.email
            contact.topics = [
                self.vocabulary.topics[i]
                for i in (*checked.topic_ids, *match.base.archived_topic_ids)
            ]
            contact.updated_at = self.now
            if "topics" in changes or "language" in changes:
                record_consent(
                    contact,
                    ConsentAction.PREFERENCES_CHANGED,
                    self.source,
                    describe_subscription(contact),
                )
            audit.record(
                "contact.updated",
                "contact",
                contact.id,
                f"Updated from {self.file_name}",
                changes,
                actor=self.actor,
            )
        db.session.flush()

    def _audit_import(self) -> None:
        counts = self.summary.counts
        audit.record(
            "contacts.imported",
            "contact",
            None,
            f"Imported {self.file_name}: {counts[Outcome.CREATE]:,} added, "
            f"{counts[Outcome.UPDATE]:,} updated, {counts[Outcome.REJECT]:,} rejected",
            {
                "file": self.file_name,
                "read_as": self.table.description,
                "status": self.settings.status.value,
                **({"basis": self.basis} if self.basis else {}),
                "existing": "update" if self.settings.update_existing else "skip",
                "mapping": {
                    column: name
                    for column, name in zip(self.table.header, self.settings.mapping, strict=False)
                    if name
                },
                **{outcome.value: counts[outcome] for outcome in Outcome},
                "new_organisations": self.summary.new_organisations,
                "confirmation_emails": self.summary.emails_sent,
            },
            actor=self.actor,
        )
        db.session.flush()
