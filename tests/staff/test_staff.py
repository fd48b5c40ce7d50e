"""Managing staff accounts from the back office and the command line."""

import sqlalchemy as sa

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.auth.models import Role, User
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, log_in


def _user(app, email) -> User:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        db.session.expunge_all()
        return user


def test_admin_creates_an_account_that_can_log_in(app, admin_client):
    response = admin_client.post(
        "/admin/users",
        data={
            "csrf_token": csrf_token(admin_client, "/admin/users"),
            "email": "New.Person@UNECE.test",
            "role": "editor",
            "password": "twelve chars or more",
        },
    )
    assert response.status_code == 302
    assert _user(app, "new.person@unece.test").role is Role.EDITOR
    assert (
        log_in(app.test_client(), "new.person@unece.test", "twelve chars or more").status_code
        == 302
    )
    with app.app_context():
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.created"))
        assert entry.actor == "admin@unece.test"


def test_duplicate_or_weak_account_is_refused(app, admin_client):
    for email, password, message in [
        ("admin@unece.test", "twelve chars or more", "already exists"),
        ("x@unece.test", "short", "at least 12"),
        ("not an email", "twelve chars or more", "valid email"),
    ]:
        response = admin_client.post(
            "/admin/users",
            data={
                "csrf_token": csrf_token(admin_client, "/admin/users"),
                "email": email,
                "role": "viewer",
                "password": password,
            },
        )
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_role_change_is_audited_and_last_admin_is_kept(app, admin_client):
    admin = _user(app, "admin@unece.test")
    response = admin_client.post(
        f"/admin/users/{admin.id}/role",
        data={"csrf_token": csrf_token(admin_client, "/admin/users"), "role": "viewer"},
        follow_redirects=True,
    )
    assert "At least one active administrator must remain." in response.get_data(as_text=True)
    assert _user(app, "admin@unece.test").role is Role.ADMIN


def test_users_cli(app):
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["users", "create", "Cli@UNECE.test", "--role", "admin", "--password-stdin"],
        input="a long enough password\n",
    )
    assert created.exit_code == 0, created.output
    assert _user(app, "cli@unece.test").role is Role.ADMIN
    duplicate = runner.invoke(
        args=["users", "create", "cli@unece.test", "--password-stdin"],
        input="a long enough password\n",
    )
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.output
    runner.invoke(
        args=["users", "create", "two@unece.test", "--password-stdin"],
        input="a long enough password\n",
    )
    assert runner.invoke(args=["users", "set-role", "two@unece.test", "editor"]).exit_code == 0
    assert _user(app, "two@unece.test").role is Role.EDITOR
    assert runner.invoke(args=["users", "disable", "two@unece.test"]).exit_code == 0
    assert _user(app, "two@unece.test").active is False
    listing = runner.invoke(args=["users", "list"]).output
    assert "cli@unece.test" in listing and "disabled" in listing
    missing = runner.invoke(args=["users", "disable", "ghost@unece.test"])
    assert missing.exit_code != 0 and "No staff account" in missing.output
    last_admin = runner.invoke(args=["users", "set-role", "cli@unece.test", "viewer"])
    assert last_admin.exit_code != 0


def test_bootstrap_admin_only_on_an_empty_install(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["users", "bootstrap-admin"])
    assert "admin@localhost" in first.output
    password = first.output.split("password:")[1].split()[0]
    assert log_in(app.test_client(), "admin@localhost", password).status_code == 302
    again = runner.invoke(args=["users", "bootstrap-admin"])
    assert again.output == ""
