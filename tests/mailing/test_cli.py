"""`flask announcements ...`: the same rules and the same audit entries as the pages."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.audit.models import AuditEntry
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
    ("ahead", "message"),
    [
        (timedelta(days=3 * 365), "Choose a time within a year from now."),
        (timedelta(days=-1), "Choose a time in the future"),
    ],
    ids=["years-ahead", "in-the-past"],
)
def test_a_schedule_outside_the_window_is_refused(mail_app, tmp_path, ahead, message):
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = _create(mail_app, tmp_path)
    at = (utcnow() + ahead).isoformat()
    result = _flask(mail_app, "send", str(announcement_id), "--at", at)
    assert result.exit_code != 0
    assert message in result.output
    assert _queued(mail_app) == 0
    assert _status(mail_app, announcement_id) is AnnouncementStatus.DRAFT
    assert audit_entries(mail_app, "announcement.scheduled") == []


def _actions(app) -> list[tuple[str, int, str, int | None]]:
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.entity_id, e.actor, e.user_id) for e in entries]


@pytest.mark.parametrize("by", [None, "Editor@UNECE.test"], ids=["without-by", "with-by"])
def test_every_command_is_in_the_audit_log_with_its_actor(mail_app, tmp_path, by):
    user_id = create_staff(mail_app, "editor@unece.test", "editor")
    actor, actor_id = ("editor@unece.test", user_id) if by else ("command line", None)
    by_option = ("--by", by) if by else ()
    add_contacts(mail_app, ["ok@example.org", "perm@example.org"])

    def run(*arguments: str) -> str:
        result = _flask(mail_app, *arguments, *by_option)
        assert result.exit_code == 0, result.output
        return result.output

    scheduled = _create(mail_app, tmp_path, *by_option)
    when = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    assert "scheduled" in run("send", str(scheduled), "--at", when.isoformat())
    run("pause", str(scheduled))
    run("resume", str(scheduled))
    assert "2 unsent message(s) skipped" in run("cancel", str(scheduled))
    sent = _create(mail_app, tmp_path, *by_option)
    run("send", str(sent))
    run_worker(mail_app)  # the test server refuses perm@ for good
    assert "1 failed delivery(ies) queued again" in run("retry", str(sent))

    expected = [
        ("announcement.created", scheduled),
        ("announcement.scheduled", scheduled),
        ("announcement.paused", scheduled),
        ("announcement.resumed", scheduled),
        ("announcement.cancelled", scheduled),
        ("announcement.created", sent),
        ("announcement.send_started", sent),
        ("announcement.retried", sent),
    ]
    assert _actions(mail_app) == [(*entry, actor, actor_id) for entry in expected]
    with mail_app.app_context():
        created = db.session.get(Announcement, sent)
        assert created.created_by_id == actor_id


def test_command_line_audit_entries_read_as_the_pages_write_them(mail_app, tmp_path):
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    first = _create(mail_app, tmp_path)
    when = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    assert _flask(mail_app, "send", str(first), "--at", when.isoformat()).exit_code == 0
    for command in ("pause", "resume", "cancel"):
        assert _flask(mail_app, command, str(first)).exit_code == 0
    second = _create(mail_app, tmp_path)
    assert _flask(mail_app, "send", str(second)).exit_code == 0

    [created, _other] = audit_entries(mail_app, "announcement.created")
    [scheduled] = audit_entries(mail_app, "announcement.scheduled")
    [started] = audit_entries(mail_app, "announcement.send_started")
    [paused] = audit_entries(mail_app, "announcement.paused")
    [resumed] = audit_entries(mail_app, "announcement.resumed")
    [cancelled] = audit_entries(mail_app, "announcement.cancelled")
    assert created.summary == "Drafted announcement “Workshop”"
    assert created.changes["subject_en"] == [None, "Workshop"]
    assert scheduled.summary == (
        f"Scheduled “Workshop” for {when:%Y-%m-%d %H:%M} UTC to 2 recipient(s)"
    )
    assert scheduled.changes == {"recipients": 2, "scheduled_at": when.isoformat()}
    assert started.summary == "Started sending “Workshop” to 2 recipient(s)"
    assert started.changes == {"recipients": 2, "scheduled_at": None}
    assert paused.summary == "Paused: “Workshop”" and paused.changes is None
    assert resumed.summary == "Resumed: “Workshop”"
    assert cancelled.summary == "Cancelled; 2 unsent message(s) skipped: “Workshop”"
    assert cancelled.changes == {"count": 2}


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
