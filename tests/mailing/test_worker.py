"""The delivery engine against real SMTP servers, including ones that fail."""

import os
import time
import types
from pathlib import Path

import sqlalchemy as sa

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from jeg_contacts.jobs import runner as job_runner
from jeg_contacts.mailer import external_url
from jeg_contacts.mailing import drafts, services, tracking, worker
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus, Delivery, DeliveryStatus
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.mailing.conftest import add_contacts


def _announce(app, **criteria) -> int:
    with app.app_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(
                subject_en="Workshop on tailings safety",
                body_en="Dear {{ given_name }},\n\nThe **workshop** is in Almaty.",
                subject_fr="Atelier sur la sécurité des résidus",
                body_fr="Bonjour {{ given_name }},\n\nL'**atelier** a lieu à Almaty.",
                criteria=criteria,
            )
        )
        services.start_sending(announcement)
        db.session.commit()
        return announcement.id


def _run(app, **options):
    return DeliveryWorker(app, until_idle=True, poll_seconds=0.05, **options).run()


def _deliveries(app, announcement_id) -> dict[str, tuple[str, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Contact.email_key, Delivery.status, Delivery.last_reply)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.announcement_id == announcement_id)
        ).all()
        return {email: (status.value, reply) for email, status, reply in rows}


def test_each_active_recipient_gets_one_message_in_their_language(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    add_contacts(mail_app, [f"en{n}@example.org" for n in range(5)])
    add_contacts(mail_app, ["fr@example.org"], language="fr", given_name="Élodie")
    add_contacts(mail_app, ["ru@example.org"], language="ru")  # no Russian version: English
    add_contacts(mail_app, ["gone@example.org"], status="unsubscribed")
    announcement_id = _announce(mail_app)

    outcome = _run(mail_app, concurrency=2)

    assert outcome.sent == 7
    assert handler.recipients() == {address: 1 for address in [
        *(f"en{n}@example.org" for n in range(5)), "fr@example.org", "ru@example.org"
    ]}  # fmt: skip
    by_address = {str(m["To"].addresses[0].addr_spec): m for m in handler.received}
    french = by_address["fr@example.org"]
    assert str(french["Subject"]) == "Atelier sur la sécurité des résidus"
    assert "Bonjour Élodie" in french.get_body(preferencelist=("plain",)).get_content()
    assert str(by_address["ru@example.org"]["Subject"]) == "Workshop on tailings safety"
    english = by_address["en0@example.org"]
    with mail_app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email == "en0@example.org"))
        token = manage_token(contact)
        unsubscribe_url = external_url("signup.unsubscribe", token=token)
        preferences_url = external_url("signup.preferences", token=token)
    # A link too long for one line starts the next one (RFC 2369 lets it fold).
    assert english["List-Unsubscribe"].strip() == f"<{unsubscribe_url}>"
    assert english["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert english["List-Id"]
    assert english["Message-ID"]
    html = english.get_body(preferencelist=("html",)).get_content()
    assert "<strong>workshop</strong>" in html
    assert f'href="{preferences_url}"' in html and f'href="{unsubscribe_url}"' in html
    with mail_app.app_context():
        assert db.session.get(Announcement, announcement_id).status is AnnouncementStatus.SENT
        counts = tracking.status_counts(announcement_id)
    assert counts == {
        "queued": 0, "sending": 0, "sent": 7, "failed": 0, "skipped": 0, "total": 7
    }  # fmt: skip


def test_each_outcome_is_committed_before_the_next_message_goes_out(mail_app, flaky_smtp):
    """The duplicate bound: whenever a message is in flight, every earlier one sent over the
    connection is already recorded, so a crash can leave at most that one unrecorded."""
    handler, _port = flaky_smtp
    add_contacts(mail_app, [f"person{n}@example.org" for n in range(6)])
    announcement_id = _announce(mail_app)
    recorded_when_data_arrived = []

    def count_recorded(_recipient: str) -> None:
        with mail_app.app_context():
            recorded_when_data_arrived.append(
                db.session.scalar(
                    sa.select(sa.func.count()).where(
                        Delivery.announcement_id == announcement_id,
                        Delivery.status == DeliveryStatus.SENT,
                    )
                )
            )

    handler.on_data = count_recorded
    _run(mail_app, concurrency=1)
    assert recorded_when_data_arrived == [0, 1, 2, 3, 4, 5]


def test_unsubscribing_after_the_snapshot_skips_the_message(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    ids = add_contacts(mail_app, ["stay@example.org", "leave@example.org"])
    announcement_id = _announce(mail_app)
    with mail_app.app_context():
        db.session.get(Contact, ids[1]).status = ContactStatus.UNSUBSCRIBED
        db.session.commit()
    _run(mail_app)
    assert handler.recipients() == {"stay@example.org": 1}
    assert _deliveries(mail_app, announcement_id)["leave@example.org"][0] == "skipped"


def test_temporary_failures_are_retried_permanent_ones_recorded(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    addresses = [
        "ok1@example.org", "temp1@example.org", "perm1@example.org",
        "drop1@example.org", "ok2@example.org", "temp2@example.org", "perm2@example.org",
    ]  # fmt: skip
    add_contacts(mail_app, addresses)
    announcement_id = _announce(mail_app)

    _run(mail_app, concurrency=2)

    results = _deliveries(mail_app, announcement_id)
    for address in ("ok1", "ok2", "temp1", "temp2", "drop1"):
        assert results[f"{address}@example.org"][0] == "sent", address
    for address in ("perm1", "perm2"):
        status, reply = results[f"{address}@example.org"]
        assert status == "failed"
        assert reply.startswith("550")
    received = handler.recipients()
    assert all(count == 1 for count in received.values())
    assert set(received) == {f"{a}@example.org" for a in ("ok1", "ok2", "temp1", "temp2", "drop1")}
    assert handler.attempts["temp1@example.org"] == 2


def test_giving_up_after_the_attempt_limit(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    handler.temp_failures = 10
    add_contacts(mail_app, ["temp@example.org"])
    announcement_id = _announce(mail_app)
    _run(mail_app)
    status, reply = _deliveries(mail_app, announcement_id)["temp@example.org"]
    assert status == "failed"
    assert "gave up after 4" in reply and "451" in reply
    assert handler.attempts["temp@example.org"] == 4


def test_retry_failed_sends_them_again(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["perm@example.org"])
    announcement_id = _announce(mail_app)
    _run(mail_app)
    handler.received.clear()
    with mail_app.app_context():
        announcement = db.session.get(Announcement, announcement_id)
        assert services.retry_failed(announcement) == 1
        db.session.commit()
    _run(mail_app)
    assert handler.attempts["perm@example.org"] == 2


def test_paused_announcements_wait_and_resume(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    announcement_id = _announce(mail_app)
    with mail_app.app_context():
        services.pause(db.session.get(Announcement, announcement_id))
        db.session.commit()
    _run(mail_app)
    assert handler.received == []
    with mail_app.app_context():
        services.resume(db.session.get(Announcement, announcement_id))
        db.session.commit()
    _run(mail_app)
    assert handler.recipients() == {"a@example.org": 1, "b@example.org": 1}


def test_cancel_skips_what_is_left(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    announcement_id = _announce(mail_app)
    with mail_app.app_context():
        assert services.cancel(db.session.get(Announcement, announcement_id)) == 2
        db.session.commit()
    _run(mail_app)
    assert handler.received == []
    assert {s for s, _ in _deliveries(mail_app, announcement_id).values()} == {"skipped"}


def test_audience_filters_and_snapshot(mail_app, flaky_smtp):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["de@example.org"], country="DE")
    add_contacts(mail_app, ["kz@example.org"], country="KZ", language="ru")
    announcement_id = _announce(mail_app, country=["KZ"])
    add_contacts(mail_app, ["late-kz@example.org"], country="KZ")  # after the snapshot
    _run(mail_app)
    assert handler.recipients() == {"kz@example.org": 1}
    assert set(_deliveries(mail_app, announcement_id)) == {"kz@example.org"}


def _run_worker_command(app) -> None:
    """`flask worker --until-idle`: deliveries and background jobs (housekeeping among them)."""
    result = app.test_cli_runner().invoke(args=["worker", "--until-idle", "--quiet"])
    assert result.exit_code == 0, result.output


def test_the_worker_deletes_import_uploads_older_than_a_day(mail_app):
    """Uploaded contact lists are personal data: kept a day, even with no import page visit
    (a recurring job of the worker, registered by imports)."""
    imports = Path(mail_app.instance_path) / "imports"
    old, fresh = imports / "old-upload", imports / "fresh-upload"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "upload.json").write_text("{}")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))

    _run_worker_command(mail_app)

    assert not old.exists()
    assert fresh.exists()


def test_a_worker_started_just_after_boot_deletes_old_uploads_at_once(mail_app, monkeypatch):
    """time.monotonic() counts from boot: on a machine up for seconds the worker's clock reads
    a small number, and its first round must still do every periodic job."""
    started = time.monotonic()
    just_booted = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    just_booted.monotonic = lambda: time.monotonic() - started  # booted this very moment
    monkeypatch.setattr(worker, "time", just_booted)
    monkeypatch.setattr(job_runner, "time", just_booted)
    old = Path(mail_app.instance_path) / "imports" / "old-upload"
    old.mkdir(parents=True)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = _announce(mail_app)

    _run_worker_command(mail_app)

    assert not old.exists()
    assert _deliveries(mail_app, announcement_id) == {"a@example.org": ("sent", "250 2.0.0 OK")}
