"""Writing an import's checked rows once every row of the file is checked: the organisations
they add, new contacts with one plain executemany per table, updates through the ORM, and the
import's own audit entry."""

from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from jeg_contacts.audit import services as audit
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.audit.services import Actor
from jeg_contacts.contacts.mail import send_confirmation
from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    Organisation,
    search_key,
    subscriptions,
)
from jeg_contacts.contacts.services import (
    consent_values,
    describe_subscription,
    new_link_secret,
    record_consent,
    subscription_summary,
)
from jeg_contacts.extensions import db
from jeg_contacts.imports.existing import Existing, known_organisations
from jeg_contacts.imports.mapping import ImportSettings, Vocabulary
from jeg_contacts.imports.reading import Table
from jeg_contacts.imports.rows import CheckedRow
from jeg_contacts.imports.summary import ImportSummary, Outcome

# A row to update: the checked row, the contact as it is, and the audited changes.
Update = tuple[CheckedRow, Existing, dict[str, list]]


def insert_rows(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` with one executemany, passing their values to the driver as they are.

    SQLAlchemy's insert() runs every value of every row through its column's type first; for
    the million values of a 100,000-row import that took longer than the database's own work.
    So `rows` hold what the driver takes: enum values as strings, and constant values of
    other types through `stored`."""
    if not rows:
        return
    connection = db.session.connection()
    compiled = sa.insert(table).compile(dialect=connection.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        rows = list(map(itemgetter(*compiled.positiontup), rows))
    connection.exec_driver_sql(compiled.string, rows)


def stored(column: sa.Column, value: Any) -> Any:
    """`value` as `column`'s type hands it to the driver (for insert_rows)."""
    dialect = db.session.get_bind().dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process is not None else value


def confirms_by_email(checked: CheckedRow, import_status: ContactStatus) -> bool:
    """Whether a new contact is emailed a confirmation link: when the import asks for
    pending contacts (a row the file marks pending in an active import stays pending,
    as it was where it came from, without an email)."""
    return checked.status is ContactStatus.PENDING and import_status is ContactStatus.PENDING


class Organisations:
    """The organisations an import's rows name: those in the directory, by (normalised name,
    country), and the ones the file adds, planned while checking and written with its rows."""

    def __init__(self) -> None:
        self.known = known_organisations()
        self.planned: dict[tuple[str, str], CheckedRow] = {}
        self.ids: dict[tuple[str, str], int] = {key: row.id for key, row in self.known.items()}
        self.websites_filled: set[int] = set()

    def name(self, checked: CheckedRow) -> str:
        """The organisation's name as the directory spells it, or as the file first did."""
        known = self.known.get(checked.organisation_key)
        if known is not None:
            return known.name
        planned = self.planned.get(checked.organisation_key)
        return planned.organisation_name if planned else checked.organisation_name

    def plan(self, checked: CheckedRow) -> None:
        key = checked.organisation_key
        if key not in self.known and key not in self.planned:
            self.planned[key] = checked

    def adopt_added_meanwhile(self) -> None:
        """Use, rather than add again, the new organisations of the file that someone added
        while its rows were checked (a sign-up, for instance)."""
        for key, known in known_organisations().items():
            if key in self.planned:
                self.known[key] = known
                self.ids[key] = known.id

    def id(self, checked: CheckedRow) -> int:
        return self.ids[checked.organisation_key]

    def write(self, rows: list[CheckedRow], now: Any) -> None:
        """Add the organisations of `rows` not in the directory yet, and give known ones the
        website a row names when they have none."""
        new: dict[tuple[str, str], CheckedRow] = {}
        for checked in rows:
            key = checked.organisation_key
            if key in self.ids:
                known = self.known.get(key)
                if (
                    known is not None
                    and not known.website
                    and checked.organisation_website
                    and known.id not in self.websites_filled
                ):
                    self._fill_website(known.id, checked.organisation_website, now)
                continue
            new.setdefault(key, self.planned.get(key, checked))
        if new:
            self._insert(new, now)

    def _fill_website(self, organisation_id: int, website: str, now: Any) -> None:
        # As find_or_create_organisation: a known organisation gains a website it did not have.
        db.session.execute(
            sa.update(Organisation.__table__)
            .where(Organisation.id == organisation_id, Organisation.website.is_(None))
            .values(website=website, updated_at=now)
        )
        self.websites_filled.add(organisation_id)

    def _insert(self, new: dict[tuple[str, str], CheckedRow], now: Any) -> None:
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
                    "created_at": now,
                    "updated_at": now,
                }
                for key, checked in new.items()
            ],
        ).all()
        for organisation_id, normalised_name, country in inserted:
            self.ids[(normalised_name, country or "")] = organisation_id


class Writer:
    """Writes the creates and updates of one import, each with its consent and audit rows."""

    def __init__(
        self,
        settings: ImportSettings,
        *,
        file_name: str,
        actor: Actor,
        source: str,
        basis: str,
        now: Any,
        vocabulary: Vocabulary,
        organisations: Organisations,
        summary: ImportSummary,
    ) -> None:
        self.settings = settings
        self.file_name = file_name
        self.actor = actor
        self.source = source
        self.basis = basis
        self.now = now
        self.vocabulary = vocabulary
        self.organisations = organisations
        self.summary = summary

    # -- New contacts ----------------------------------------------------------------------

    def write_creates(self, rows: list[CheckedRow]) -> None:
        if not rows:
            return
        self.organisations.write(rows, self.now)
        # Every row is written at the same moment.
        now = stored(Contact.__table__.c.created_at, self.now)
        self._insert_contacts(rows, now)
        ids = dict(
            db.session.execute(
                sa.select(Contact.email_key, Contact.id).where(
                    Contact.email_key.in_([checked.key for checked in rows])
                )
            ).all()
        )
        pending = self._insert_records(rows, ids, now)
        if pending:
            self._send_confirmations(pending)

    def _insert_contacts(self, rows: list[CheckedRow], now: Any) -> None:
        confirmed = now if self.settings.status is ContactStatus.ACTIVE else None
        organisation_id = self.organisations.id
        insert_rows(
            Contact.__table__,
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
                    "organisation_id": organisation_id(checked),
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

    def _insert_records(self, rows: list[CheckedRow], ids: dict[str, int], now: Any) -> list[int]:
        """The new contacts' subscriptions, consent events and audit entries; returns the ids
        of those to email a confirmation link."""
        no_changes = stored(AuditEntry.__table__.c.changes, None)
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
            if confirms_by_email(checked, self.settings.status):
                pending.append(contact_id)
        insert_rows(subscriptions, subscription_rows)
        insert_rows(ConsentEvent.__table__, consent_rows)
        insert_rows(AuditEntry.__table__, audit_rows)
        return pending

    def _send_confirmations(self, pending: list[int]) -> None:
        for contact in db.session.scalars(sa.select(Contact).where(Contact.id.in_(pending))):
            if send_confirmation(contact):
                self.summary.emails_sent += 1
            else:
                self.summary.emails_held += 1

    # -- Existing contacts -----------------------------------------------------------------

    def write_updates(self, rows: list[Update]) -> None:
        if not rows:
            return
        self.organisations.write([checked for checked, _match, _changes in rows], self.now)
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
            self._update(contact, checked, match)
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

    def _update(self, contact: Contact, checked: CheckedRow, match: Existing) -> None:
        contact.organisation = db.session.get(Organisation, self.organisations.id(checked))
        contact.salutation = checked.salutation
        contact.given_name = checked.given_name
        contact.family_name = checked.family_name
        for name, value in checked.details.items():
            setattr(contact, name, value)
        contact.country = checked.country
        contact.language = checked.language
        contact.email = checked.email
        contact.topics = [
            self.vocabulary.topics[i] for i in (*checked.topic_ids, *match.base.archived_topic_ids)
        ]
        contact.updated_at = self.now

    # -- The import as a whole -------------------------------------------------------------

    def audit_import(self, table: Table) -> None:
        counts = self.summary.counts
        audit.record(
            "contacts.imported",
            "contact",
            None,
            f"Imported {self.file_name}: {counts[Outcome.CREATE]:,} added, "
            f"{counts[Outcome.UPDATE]:,} updated, {counts[Outcome.REJECT]:,} rejected",
            {
                "file": self.file_name,
                "read_as": table.description,
                "status": self.settings.status.value,
                **({"basis": self.basis} if self.basis else {}),
                "existing": "update" if self.settings.update_existing else "skip",
                "mapping": {
                    column: name
                    for column, name in zip(table.header, self.settings.mapping, strict=False)
                    if name
                },
                **{outcome.value: counts[outcome] for outcome in Outcome},
                "new_organisations": self.summary.new_organisations,
                "confirmation_emails": self.summary.emails_sent,
            },
            actor=self.actor,
        )
        db.session.flush()
