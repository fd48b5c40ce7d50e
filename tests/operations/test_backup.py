"""Restore drills: data made, backed up, restored into an empty database, the same contacts,
announcements and audit log, and a preference link made before the backup still working
after the restore (the secret key came along). On SQLite, and on PostgreSQL with
TEST_DATABASE_URL (two throwaway databases of their own)."""

import io
import re
import stat
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from jeg_contacts import create_app
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.cli import seed_topics
from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from jeg_contacts.mailing.models import Announcement
from tests.conftest import (
    TEST_DATABASE_URL,
    _apps,
    csrf_token,
    link_in,
    outbox_messages,
    post_signup,
)
from tests.mailing.test_worker import _announce
from tests.operations.conftest import stamp


def server_app(monkeypatch: pytest.MonkeyPatch, instance: Path, database_url: str) -> Flask:
    """The app as a server starts it: its settings from the environment only."""
    monkeypatch.setenv("INSTANCE_PATH", str(instance))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BASE_URL", "http://jeg.test")
    monkeypatch.setenv("OUTBOX_DIR", str(instance / "outbox"))
    app = create_app({"TESTING": True})
    _apps.append(app)
    return app


def make_data(app: Flask) -> str:
    """A confirmed subscriber, a second contact, an announcement being sent, their audit
    entries; the subscriber's preference link (a path)."""
    with app.app_context():
        db.create_all()
        seed_topics()
        db.session.commit()
    stamp(app)
    client = app.test_client()
    post_signup(client, app, email="zoe@example.org")
    confirm = link_in(outbox_messages(app)[-1], "/confirm/")
    client.post(confirm, data={"csrf_token": csrf_token(client, confirm)})
    post_signup(client, app, email="olga@example.ru", given_name="Ольга")
    _announce(app)
    with app.app_context():
        zoe = db.session.scalar(sa.select(Contact).where(Contact.email == "zoe@example.org"))
        return f"/preferences/{manage_token(zoe)}"


def snapshot(app: Flask) -> dict[str, list[tuple]]:
    """What must come back: contacts, announcements and the audit log, row for row."""
    with app.app_context():
        return {
            "contacts": db.session.execute(
                sa.select(Contact.id, Contact.email, Contact.given_name, Contact.status).order_by(
                    Contact.id
                )
            ).all(),
            "announcements": db.session.execute(
                sa.select(Announcement.id, Announcement.subject_en, Announcement.status)
            ).all(),
            "audit": db.session.execute(
                sa.select(AuditEntry.id, AuditEntry.action, AuditEntry.summary).order_by(
                    AuditEntry.id
                )
            ).all(),
        }


def read_settings(path: Path) -> dict[str, str]:
    """The settings file as sh or systemd reads it (double quotes, backslash escapes)."""
    settings = {}
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r'([A-Z_][A-Z0-9_]*)="((?:[^"\\]|\\.)*)"', line):
            settings[match[1]] = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], match[2])
    return settings


def backup_of(app: Flask, folder: Path) -> Path:
    result = app.test_cli_runner().invoke(args=["backup", str(folder)])
    assert result.exit_code == 0, result.output
    [archive] = folder.glob("jeg-contacts-backup-*.tar.gz")
    assert str(archive) in result.output
    return archive


def assert_private_and_without_mail(archive: Path, key: str) -> None:
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as opened:
        names = opened.getnames()
        settings = opened.extractfile("settings.env").read().decode()
    assert "manifest.json" in names and "settings.env" in names
    assert not [name for name in names if "outbox" in name or "upload" in name]
    assert f'SECRET_KEY="{key}"' in settings


def test_sqlite_restore_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Development layout: no SECRET_KEY in the environment, the key in instance/secret_key."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    source = server_app(monkeypatch, tmp_path / "old", f"sqlite:///{tmp_path / 'old.db'}")
    preference_link = make_data(source)
    before = snapshot(source)
    assert source.test_client().get(preference_link).status_code == 200
    archive = backup_of(source, tmp_path / "backups")
    assert_private_and_without_mail(archive, source.config["SECRET_KEY"])
    assert (tmp_path / "old" / "outbox").exists()  # there was mail, and it stayed out

    target = server_app(monkeypatch, tmp_path / "new", f"sqlite:///{tmp_path / 'new.db'}")
    assert target.config["SECRET_KEY"] != source.config["SECRET_KEY"]  # a new server's own
    result = target.test_cli_runner().invoke(args=["restore", str(archive)])
    assert result.exit_code == 0, result.output
    assert "checked against the backup" in result.output

    # The server restarts on the restored data and key.
    restarted = server_app(monkeypatch, tmp_path / "new", f"sqlite:///{tmp_path / 'new.db'}")
    assert snapshot(restarted) == before
    page = restarted.test_client().get(preference_link)
    assert page.status_code == 200
    assert "zoe@example.org" in page.get_data(as_text=True)
    settings = tmp_path / "new" / "restored-settings.env"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    assert read_settings(settings)["SECRET_KEY"] == source.config["SECRET_KEY"]


def test_restore_into_a_database_that_is_not_empty_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SECRET_KEY", "k" * 8 + uuid.uuid4().hex)
    source = server_app(monkeypatch, tmp_path / "old", f"sqlite:///{tmp_path / 'old.db'}")
    make_data(source)
    archive = backup_of(source, tmp_path / "backups")
    before = snapshot(source)

    result = source.test_cli_runner().invoke(args=["restore", str(archive)])

    assert result.exit_code == 1
    assert "refused: the database" in result.output
    assert "is not empty" in result.output and "restore again" in result.output
    assert snapshot(source) == before
    assert not (tmp_path / "old" / "restored-settings.env").exists()


def test_a_file_that_is_not_a_backup_is_refused(tmp_path, monkeypatch):
    app = server_app(monkeypatch, tmp_path / "i", f"sqlite:///{tmp_path / 'new.db'}")
    not_a_backup = tmp_path / "notes.tar.gz"
    with tarfile.open(not_a_backup, "w:gz") as archive:
        archive.add(__file__, arcname="notes.py")
    result = app.test_cli_runner().invoke(args=["restore", str(not_a_backup)])
    assert result.exit_code == 1
    assert "not a jeg-contacts backup" in result.output


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    """Two new, empty PostgreSQL databases (the test role may create databases)."""
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL")
    server = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    names = [f"jeg_drill_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with server.connect() as connection:
        for name in names:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(TEST_DATABASE_URL)
    yield tuple(url.set(database=name).render_as_string(hide_password=False) for name in names)
    while _apps:
        with _apps.pop().app_context():
            db.session.remove()
            db.engine.dispose()
    with server.connect() as connection:
        for name in names:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    server.dispose()


def test_postgresql_restore_drill(tmp_path, monkeypatch, two_databases):
    """Server layout: the key in the environment, pg_dump and pg_restore."""
    old_database, new_database = two_databases
    monkeypatch.setenv("SECRET_KEY", "old-server-key-" + uuid.uuid4().hex)
    source = server_app(monkeypatch, tmp_path / "old", old_database)
    preference_link = make_data(source)
    before = snapshot(source)
    archive = backup_of(source, tmp_path / "backups")
    assert_private_and_without_mail(archive, source.config["SECRET_KEY"])
    with tarfile.open(archive) as opened:
        assert "database.pgdump" in opened.getnames()

    monkeypatch.setenv("SECRET_KEY", "new-server-key-" + uuid.uuid4().hex)
    target = server_app(monkeypatch, tmp_path / "new", new_database)
    settings_file = tmp_path / "settings.env"
    result = target.test_cli_runner().invoke(
        args=["restore", str(archive), "--settings-out", str(settings_file)]
    )
    assert result.exit_code == 0, result.output
    assert snapshot(target) == before
    # The data alone is not enough: with its own key, the new server refuses the old links.
    assert target.test_client().get(preference_link).status_code == 400

    # The operator puts the backup's settings in the service's environment and restarts.
    settings = read_settings(settings_file)
    assert settings["DATABASE_URL"] == old_database
    monkeypatch.setenv("SECRET_KEY", settings["SECRET_KEY"])
    restarted = server_app(monkeypatch, tmp_path / "new", new_database)
    assert restarted.test_client().get(preference_link).status_code == 200

    again = restarted.test_cli_runner().invoke(args=["restore", str(archive)])
    assert again.exit_code == 1 and "is not empty" in again.output


def test_a_doctored_archive_writes_nothing_outside_the_database(tmp_path, monkeypatch):
    """Members are read by their known names only: one named ../../something is ignored."""
    monkeypatch.setenv("SECRET_KEY", "k" * 8 + uuid.uuid4().hex)
    source = server_app(monkeypatch, tmp_path / "old", f"sqlite:///{tmp_path / 'old.db'}")
    make_data(source)
    archive = backup_of(source, tmp_path / "backups")
    doctored = tmp_path / "doctored.tar.gz"
    with tarfile.open(archive) as original, tarfile.open(doctored, "w:gz") as copy:
        for member in original.getmembers():
            copy.addfile(member, original.extractfile(member))
        evil = tarfile.TarInfo("../../escaped.txt")
        evil.size = 4
        copy.addfile(evil, io.BytesIO(b"evil"))

    target = server_app(
        monkeypatch, tmp_path / "new" / "instance", f"sqlite:///{tmp_path / 'new.db'}"
    )
    result = target.test_cli_runner().invoke(args=["restore", str(doctored)])

    assert result.exit_code == 0, result.output
    assert not list(tmp_path.rglob("escaped.txt"))
