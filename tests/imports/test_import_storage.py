"""An import writes its rows with plain executemany; they must read as the ORM's do."""

import sqlalchemy as sa

from jeg_contacts.audit import services as audit
from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact
from tests.imports.conftest import BASIS, HEADER, csv_bytes, row, run_import, write


def _raw(sql: str, **parameters: object) -> sa.Row:
    return db.session.execute(sa.text(sql), parameters).one()


def _same_kind(imported: object, written_by_orm: object) -> bool:
    """The same type, and for text (SQLite's timestamps) the same length."""
    if type(imported) is not type(written_by_orm):
        return False
    return not isinstance(imported, str) or len(imported) == len(written_by_orm)


def test_imported_rows_are_stored_as_the_orm_stores_them(app, tmp_path):
    make_contact(app, email="orm@example.org")
    with app.test_request_context():
        audit.record("test.nothing", "contact", None, "No changes")
        db.session.commit()
    content = csv_bytes(
        [[*row("ana@example.org"), ""], [*row("ben@example.org"), "unsubscribed"]],
        header=[*HEADER, "Status"],
    )
    run_import(app, write(tmp_path, "list.csv", content), status=ContactStatus.ACTIVE, basis=BASIS)

    with app.app_context():
        contact_sql = (
            "SELECT id, created_at, updated_at, confirmed_at, status FROM contacts "
            "WHERE email = :email"
        )
        orm = _raw(contact_sql, email="orm@example.org")
        ana = _raw(contact_sql, email="ana@example.org")
        ben = _raw(contact_sql, email="ben@example.org")
        for index in (1, 2, 3):
            assert _same_kind(ana[index], orm[index])
        assert (ana.status, ben.status) == ("active", "unsubscribed")
        assert ana.created_at == ana.updated_at == ana.confirmed_at == ben.created_at

        subscription_sql = "SELECT subscribed_at FROM subscriptions WHERE contact_id = :id"
        assert _same_kind(
            _raw(subscription_sql, id=ana.id)[0], _raw(subscription_sql, id=orm.id)[0]
        )
        consent_sql = (
            "SELECT at, action FROM consent_events WHERE contact_id = :id ORDER BY id LIMIT 1"
        )
        assert _same_kind(_raw(consent_sql, id=ana.id).at, _raw(consent_sql, id=orm.id).at)
        assert [
            action
            for (action,) in db.session.execute(
                sa.text("SELECT action FROM consent_events WHERE contact_id = :id ORDER BY id"),
                {"id": ben.id},
            )
        ] == ["imported"]

        audit_sql = "SELECT at, changes FROM audit_entries WHERE action = :action AND "
        created = _raw(audit_sql + "entity_id = :id", action="contact.created", id=ana.id)
        nothing = _raw(audit_sql + "entity_id IS NULL", action="test.nothing")
        # The ORM stores "no changes" as JSON null; the import must too.
        assert created.changes == nothing.changes
        assert _same_kind(created.at, nothing.at)
