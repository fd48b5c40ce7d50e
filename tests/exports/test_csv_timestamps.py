"""CSV exports print timestamps written by the database, in UTC to the second."""

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact
from tests.exports.test_export_formats import csv_rows, export_bytes


def test_csv_timestamps_are_utc_to_the_second_whatever_zone_they_were_saved_in(app):
    signed_up = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    contact_id = make_contact(app, email="zoe@example.org", created_at=signed_up)
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        # Midnight and a half in Kyiv on 1 January is still the last day of the year in UTC.
        contact.confirmed_at = datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
        db.session.commit()
    make_contact(app, email="ana@example.org")
    with app.app_context():
        db.session.execute(
            sa.update(Contact).where(Contact.email == "ana@example.org").values(confirmed_at=None)
        )
        db.session.commit()

    for format_key in ("csv", "excel-csv"):
        content = export_bytes(app, format_key, columns=["email", "signed_up", "confirmed"])
        encoding = "utf-8-sig" if format_key == "excel-csv" else "utf-8"
        rows = {row["Email"]: row for row in csv_rows(content, encoding)}
        assert rows["zoe@example.org"]["Signed up (UTC)"] == "2026-03-04 05:06:07"
        assert rows["zoe@example.org"]["Confirmed (UTC)"] == "2025-12-31 22:30:00"
        assert rows["ana@example.org"]["Confirmed (UTC)"] == ""
