"""Staff login, throttling, logout and passwords."""

from datetime import timedelta

import sqlalchemy as sa

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.auth.models import LoginFailure, User
from jeg_contacts.extensions import db, utcnow
from tests.conftest import STAFF_PASSWORD, create_staff, csrf_token, log_in, make_app


def test_login_then_logout(app, client):
    create_staff(app, "ana@unece.test", "viewer")
    assert client.get("/admin").status_code == 302
    response = log_in(client, "Ana@UNECE.test")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin"
    assert client.get("/admin").status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(User)).last_login_at is not None
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin")})
    assert client.get("/admin").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_message(app, client):
    create_staff(app, "ana@unece.test", "viewer")
    wrong = log_in(client, "ana@unece.test", "not the password")
    unknown = log_in(client, "nobody@unece.test", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert "The email or password is incorrect." in wrong.get_data(as_text=True)
    assert "The email or password is incorrect." in unknown.get_data(as_text=True)


def test_login_redirects_back_to_a_local_page_only(app, client):
    create_staff(app, "ana@unece.test", "viewer")
    token = csrf_token(client, "/admin/login")
    data = {"csrf_token": token, "email": "ana@unece.test", "password": STAFF_PASSWORD}
    evil = client.post("/admin/login?next=//evil.example/admin", data=data)
    assert evil.headers["Location"] == "/admin"
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin")})
    token = csrf_token(client, "/admin/login")
    data["csrf_token"] = token
    good = client.post("/admin/login?next=/admin/audit?action=x", data=data)
    assert good.headers["Location"] == "/admin/audit?action=x"


def test_five_failures_lock_the_account_from_that_address_for_fifteen_minutes(app, client):
    create_staff(app, "ana@unece.test", "viewer")
    for _ in range(5):
        log_in(client, "ana@unece.test", "wrong password!")
    locked = log_in(client, "ana@unece.test")
    assert locked.status_code == 429
    assert "Try again in 15 minutes" in locked.get_data(as_text=True)

    def failures_happened(minutes_ago: timedelta) -> None:
        with app.app_context():
            db.session.execute(sa.update(LoginFailure).values(at=utcnow() - minutes_ago))
            db.session.commit()

    failures_happened(timedelta(minutes=14))
    assert log_in(client, "ana@unece.test").status_code == 429
    failures_happened(timedelta(minutes=15, seconds=1))  # the lock runs out
    assert log_in(client, "ana@unece.test").status_code == 302


def test_a_success_resets_the_failure_count(app, client):
    create_staff(app, "ana@unece.test", "viewer")
    for _ in range(4):
        log_in(client, "ana@unece.test", "wrong password!")
    assert log_in(client, "ana@unece.test").status_code == 302
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin")})
    for _ in range(4):
        log_in(client, "ana@unece.test", "wrong password!")
    assert log_in(client, "ana@unece.test").status_code == 302


def test_twenty_failures_from_one_address_lock_that_address(tmp_path):
    app = make_app(tmp_path, LOGIN_MAX_FAILURES_PER_ACCOUNT=1000)
    create_staff(app, "ana@unece.test", "viewer")
    client = app.test_client()
    for n in range(20):
        log_in(client, f"guess{n}@unece.test", "wrong password!")
    refused = log_in(client, "ana@unece.test")
    assert refused.status_code == 429
    assert "Too many failed logins from your network" in refused.get_data(as_text=True)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "127.0.0.9"
    assert log_in(elsewhere, "ana@unece.test").status_code == 302


def test_disabled_account_cannot_log_in_and_is_signed_out(app, admin_client):
    ana = create_staff(app, "ana@unece.test", "viewer")
    ana_client = app.test_client()
    assert log_in(ana_client, "ana@unece.test").status_code == 302
    admin_client.post(
        f"/admin/users/{ana}/disable", data={"csrf_token": csrf_token(admin_client, "/admin/users")}
    )
    assert ana_client.get("/admin").status_code == 302
    refused = log_in(ana_client, "ana@unece.test")
    assert "disabled" in refused.get_data(as_text=True)


def test_change_password_signs_out_other_sessions(app):
    create_staff(app, "ana@unece.test", "viewer")
    first, second = app.test_client(), app.test_client()
    log_in(first, "ana@unece.test")
    log_in(second, "ana@unece.test")
    url = "/admin/account/password"
    short = first.post(
        url,
        data={
            "csrf_token": csrf_token(first, url),
            "current_password": STAFF_PASSWORD,
            "password": "short",
            "confirm": "short",
        },
    )
    assert short.status_code == 400
    assert "at least 12 characters" in short.get_data(as_text=True)
    changed = first.post(
        url,
        data={
            "csrf_token": csrf_token(first, url),
            "current_password": STAFF_PASSWORD,
            "password": "a much longer new password",
            "confirm": "a much longer new password",
        },
    )
    assert changed.status_code == 302
    assert first.get("/admin").status_code == 200
    assert second.get("/admin").status_code == 302
    assert (
        log_in(app.test_client(), "ana@unece.test", "a much longer new password").status_code == 302
    )
    with app.app_context():
        assert db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "user.password_changed")
        )


def test_session_cookie_is_hardened_in_production(tmp_path, monkeypatch):
    monkeypatch.setenv("JEG_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a production secret of at least 32 characters")
    app = make_app(tmp_path)
    create_staff(app, "ana@unece.test", "viewer")
    client = app.test_client()
    response = log_in(client, "ana@unece.test")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
