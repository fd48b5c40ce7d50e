"""`flask announcements ...`: the same rules and the same audit entries as the pages."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus, Delivery
from tests.conftest import audit_entries, create_staff
from tests.mailing.conftest import add_contacts
from tests.mailing.ui import run_worker


def _flask(app, *arguments: str):
    return app.test_cli_runner().invoke(args=["announcements", *arguments])


def _create(app, tmp_path, *options: str) -> int:
    body = tmp_path / "body.md"
    body.write_text("Dear {{ given_name }},\n\nNews.", encoding="utf-8")
    result = _flask(app, "create", "--subject", "Workshop", "--body", str(body), *options)
    assert result.exit_code == 0, result.output
    return int(result.output.strip())


def _status(app, announcement_id: int) -> AnnouncementStatus:
    with app.app_context():
        return db.session.get(Announcement, announcement_id).status


def _queued(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Delivery))


def test_sending_to_an_audience_of_nobody_is_refused(mail_app, tmp_path):
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = _create(mail_app, tmp_path, "--country", "KZ")
    result = _flask(mail_app, "send", str(announcement_id))
    assert result.exit_code != 0
    assert "there is nobody to send to" in result.output
    assert "Nothing was queued." in result.output
    assert _queued(mail_app) == 0
    assert _status(mail_app, announcement_id) is AnnouncementStatus.DRAFT
    assert audit_entries(mail_app, "announcement.send_started") == []


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ((utcnow() + timedelta(days=3 * 365)).isoformat(), "Choose a time within a year"),
        ("2001-01-01T09:00", "Choose a time in the future"),
    ],
)
def test_a_schedule_outside_the_window_is_refused(mail_app, tmp_path, at, message):
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = _create(mail_app, tmp_path)
    result = _flask(mail_app, "send", str(announcement_id), "--at", at)
    assert result.exit_code != 0
    assert message in result.output
    assert _queued(mail_app) == 0
    assert _status(mail_app, announcement_id) is AnnouncementStatus.DRAFT


def test_every_command_is_audited_as_the_command_line(mail_app, tmp_path):
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    announcement_id = _create(mail_app, tmp_path)
    for command in ("send", "pause", "resume", "cancel"):
        result = _flask(mail_app, command, str(announcement_id))
        assert result.exit_code == 0, result.output
    [created] = audit_entries(mail_app, "announcement.created")
    [started] = audit_entries(mail_app, "announcement.send_started")
    [paused] = audit_entries(mail_app, "announcement.paused")
    [resumed] = audit_entries(mail_app, "announcement.resumed")
    [cancelled] = audit_entries(mail_app, "announcement.cancelled")
    for entry in (created, started, paused, resumed, cancelled):
        assert entry.actor == "command line" and entry.user_id is None
        assert entry.entity_id == announcement_id
    assert started.summary == "Started sending “Workshop” to 2 recipient(s)"
    assert started.changes == {"recipients": 2, "scheduled_at": None}
    assert paused.summary == "Paused: “Workshop”"
    assert cancelled.summary == "Cancelled; 2 unsent message(s) skipped: “Workshop”"
    assert cancelled.changes == {"count": 2}


def test_commands_by_a_staff_member_are_audited_as_that_person(mail_app, tmp_path):
    user_id = create_staff(mail_app, "editor@unece.test", "editor")
    add_contacts(mail_app, ["ok@example.org", "perm@example.org"])
    announcement_id = _create(mail_app, tmp_path, "--by", "editor@unece.test")
    when = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    by = ("--by", "Editor@UNECE.test")
    result = _flask(mail_app, "send", str(announcement_id), "--at", when.isoformat(), *by)
    assert result.exit_code == 0, result.output
    assert _status(mail_app, announcement_id) is AnnouncementStatus.SCHEDULED
    with mail_app.app_context():
        db.session.execute(sa.update(Delivery).values(next_attempt_at=utcnow()))
        db.session.get(Announcement, announcement_id).scheduled_at = utcnow()
        db.session.commit()
    run_worker(mail_app)  # perm@ is refused for good by the test server
    result = _flask(mail_app, "retry", str(announcement_id), *by)
    assert result.exit_code == 0, result.output
    assert "1 failed delivery(ies) queued again" in result.output

    [created] = audit_entries(mail_app, "announcement.created")
    [scheduled] = audit_entries(mail_app, "announcement.scheduled")
    [retried] = audit_entries(mail_app, "announcement.retried")
    for entry in (created, scheduled, retried):
        assert entry.actor == "editor@unece.test" and entry.user_id == user_id
    assert scheduled.summary == (
        f"Scheduled “Workshop” for {when:%Y-%m-%d %H:%M} UTC to 2 recipient(s)"
    )
    assert scheduled.changes == {"recipients": 2, "scheduled_at": when.isoformat()}
    assert retried.changes == {"count": 1}


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("nobody@unece.test", "no staff account"),
        ("gone@unece.test", "disabled"),
        ("viewer@unece.test", "editor"),
    ],
)
def test_by_must_name_an_active_editor(mail_app, tmp_path, email, message):
    from jeg_contacts.auth.models import User

    create_staff(mail_app, "viewer@unece.test", "viewer")
    gone = create_staff(mail_app, "gone@unece.test", "editor")
    with mail_app.app_context():
        db.session.get(User, gone).active = False
        db.session.commit()
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = _create(mail_app, tmp_path)
    result = _flask(mail_app, "send", str(announcement_id), "--by", email)
    assert result.exit_code != 0
    assert message in result.output
    assert _queued(mail_app) == 0
    assert audit_entries(mail_app, "announcement.send_started") == []
