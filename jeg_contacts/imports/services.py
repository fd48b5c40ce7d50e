"""Importing contact lists: every row checked with the sign-up rules (rows.py), then the valid
ones written with set-based inserts, a chunk at a time (writing.py).

Every row of the file is checked before anything is written, so a rejected row changes nothing
and the write transaction stays short; the caller commits once at the end, so a file that turns
out to be unreadable half-way leaves the database as it was. A dry run is the same pass
without the writes.
"""

from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from itertools import islice
from typing import IO, Any

from flask_babel import force_locale

from jeg_contacts.audit import services as audit

# Who imports: a staff account, or the command line.
from jeg_contacts.audit.services import Actor
from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.contacts.services import consent_basis, snapshot_values
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import utcnow
from jeg_contacts.imports import limits
from jeg_contacts.imports.existing import Existing, erased_keys, existing_contacts
from jeg_contacts.imports.mapping import (
    ImportField,
    ImportSettings,
    Vocabulary,
    mapping_problems,
)
from jeg_contacts.imports.reading import SourceRow, Table, UnreadableFile
from jeg_contacts.imports.rows import Base, CheckedRow, check_row
from jeg_contacts.imports.summary import (
    ImportSummary,
    Outcome,
    PreviewOutdated,
    RowResult,
    TooManyPending,
)
from jeg_contacts.imports.writing import Organisations, Update, Writer, confirms_by_email
from jeg_contacts.spreadsheets import FORMULA_TRIGGERS, CsvWriter
from jeg_contacts.text import EmailNormaliser, email_key

# The import's public face: views, jobs and the command line take these names from here.
__all__ = [
    "Actor",
    "ImportSummary",
    "Importer",
    "Outcome",
    "PreviewOutdated",
    "RowResult",
    "TooManyPending",
    "consent_source",
    "import_basis",
]

CHUNK_SIZE = 1000
# A cell longer than this is refused before any rule looks at it (the longest field is 300).
MAX_CELL_CHARS = 1000
_TRIGGERS = frozenset(FORMULA_TRIGGERS)


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
        self.organisations = Organisations()
        # With `write`, each chunk's creates and updates, written only once every row is
        # checked: SQLite holds its single write lock from the first write to the commit, so
        # checking first keeps that stretch to the writes themselves (seconds, not a minute).
        self.planned_writes: list[tuple[list[CheckedRow], list[Update]]] = []
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
            self._check_every_row()
        self.summary.new_organisations = len(self.organisations.planned)
        if expected is not None and self.summary.expected() != expected:
            raise PreviewOutdated(self.summary)
        if self.write:
            self._check_pending_limit(self.summary.pending)
            self.writing = True
            if self.on_writing is not None:
                self.on_writing()
            self._write_planned()
        return self.summary

    def _check_every_row(self) -> None:
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

    def _write_planned(self) -> None:
        self.organisations.adopt_added_meanwhile()
        writer = Writer(
            self.settings,
            file_name=self.file_name,
            actor=self.actor,
            source=self.source,
            basis=self.basis,
            now=self.now,
            vocabulary=self.vocabulary,
            organisations=self.organisations,
            summary=self.summary,
        )
        for creates, updates in self.planned_writes:
            writer.write_creates(creates)
            writer.write_updates(updates)
        writer.audit_import(self.table)

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
        existing = existing_contacts(
            keys, self.vocabulary, with_topics=self.settings.update_existing
        )
        erased = erased_keys(keys)
        creates: list[CheckedRow] = []
        updates: list[Update] = []
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
        """Check one row and count its outcome; a row to write comes back as (checked row,
        outcome, (existing contact, changes) for an update)."""
        email = values.get("email", "").strip()
        name = _file_name_of(values)
        organisation = values.get("organisation", "")
        refused = self._refusal(row, key, cell_problems, erased)
        if refused:
            return self._reject(row, email, name, organisation, refused)
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
        if match is None:
            return self._plan_create(row, checked)
        return self._plan_update(row, checked, match)

    def _refusal(
        self, row: SourceRow, key: str | None, cell_problems: list[str], erased: set[str]
    ) -> list[str]:
        """Why the row is refused before the rules look at it: an address seen on an earlier
        row, cells that cannot be read, or an address whose owner had their data erased."""
        if key is not None:
            if key in self.seen:
                return [f"Same email address as row {self.seen[key]}; only the first is imported."]
            self.seen[key] = row.number
        if cell_problems:
            return cell_problems
        if key is not None and key in erased:
            return [
                "Email: the owner of this address asked for their data to be erased; it "
                "cannot be imported again. They can sign up again themselves."
            ]
        return []

    def _plan_create(self, row: SourceRow, checked: CheckedRow):
        organisation = self.organisations.name(checked)
        self.organisations.plan(checked)
        if confirms_by_email(checked, self.settings.status):
            self.summary.pending += 1
        self._emit(
            RowResult(
                row.number,
                Outcome.CREATE,
                checked.email,
                f"{checked.given_name} {checked.family_name}",
                organisation,
                f"New contact, {checked.status.value}",
            )
        )
        return checked, Outcome.CREATE, None

    def _plan_update(self, row: SourceRow, checked: CheckedRow, match: Existing):
        name = f"{checked.given_name} {checked.family_name}"
        organisation = self.organisations.name(checked)
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
        self.organisations.plan(checked)
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
        self.summary.add(result)
        if self.on_row is not None:
            self.on_row(result)

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
            organisation=self.organisations.name(checked),
            organisation_country=checked.organisation_country,
            topic_slugs=(self.vocabulary.topics[i].slug for i in (*checked.topic_ids, *archived)),
        )


def _file_name_of(values: dict[str, str]) -> str:
    """The person's name as the file gives it, for a row that may not pass the rules."""
    return " ".join(
        part
        for part in (values.get("given_name", ""), values.get("family_name", ""))
        if part.strip()
    ) or values.get("full_name", "")
