"""`flask restore`: a backup archive (see `backup`) into an EMPTY database, refused otherwise,
then checked row for row against the counts the backup recorded."""

import json
import os
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from jeg_contacts.extensions import db
from jeg_contacts.operations.backup import (
    DATABASE_FILES,
    FORMAT,
    BackupError,
    Restored,
    create_private,
    database_dialect,
    libpq_connection,
    row_counts,
    run_client,
)


def _member(archive: tarfile.TarFile, name: str) -> bytes | None:
    """One file of the archive by its name (nothing is ever extracted by the archive's own
    paths, so a doctored archive cannot write outside the temporary folder)."""
    try:
        member = archive.getmember(name)
    except KeyError:
        return None
    stream = archive.extractfile(member) if member.isfile() else None
    return stream.read() if stream else None


def _read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    raw = _member(archive, "manifest.json")
    if raw is None:
        raise BackupError("this file is not a jeg-contacts backup (no manifest.json)")
    manifest = json.loads(raw)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')} is not one this version reads")
    return manifest


def _refuse_unless_empty() -> None:
    tables = sorted(sa.inspect(db.engine).get_table_names())
    if tables:
        where = db.engine.url.render_as_string(hide_password=True)
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise BackupError(
            f"refused: the database {where} is not empty ({len(tables)} tables: {shown}). "
            "A restore goes only into an empty database, so that nothing is overwritten or "
            "mixed: create a new database (PostgreSQL: createdb) or point DATABASE_URL at a "
            "new SQLite file, then restore again"
        )


def _restore_database(dialect: str, dump: Path) -> None:
    if dialect == "sqlite":
        db.engine.dispose()
        source, target = sqlite3.connect(dump), sqlite3.connect(db.engine.url.database or "")
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    uri, environment = libpq_connection(db.engine.url)
    run_client(
        [
            "pg_restore",
            "--no-owner",  # the tables belong to whoever restores, the app's own role
            "--no-acl",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={uri}",
            str(dump),
        ],
        environment,
    )


def _write_private(path: Path, data: bytes) -> None:
    with os.fdopen(create_private(path), "wb") as file:
        file.write(data)


def _restore_key_file(key: bytes | None) -> Path | None:
    """Put the backup's instance key file back when the app takes its key from that file (no
    SECRET_KEY in the environment); the replaced one is kept beside it."""
    if key is None or os.environ.get("SECRET_KEY"):
        return None
    key_file = Path(current_app.instance_path) / "secret_key"
    if key_file.exists():
        if key_file.read_bytes() == key:
            return key_file
        key_file.replace(key_file.with_name("secret_key.before-restore"))
    _write_private(key_file, key)
    return key_file


def restore(archive_path: Path, settings_out: Path) -> Restored:
    """Restore `archive_path` into the configured (empty) database; write its settings to
    `settings_out` (refused if that file exists)."""
    dialect = database_dialect()
    if settings_out.exists():
        raise BackupError(f"{settings_out} exists already: choose another --settings-out")
    with tarfile.open(archive_path, mode="r:gz") as archive:
        manifest = _read_manifest(archive)
        if manifest["database"] != dialect:
            raise BackupError(
                f"this backup is of a {manifest['database']} database; DATABASE_URL points at "
                f"{dialect}: restore it into {manifest['database']}"
            )
        _refuse_unless_empty()
        dump_data = _member(archive, DATABASE_FILES[dialect])
        settings = _member(archive, "settings.env")
        key = _member(archive, "secret_key")
    if dump_data is None or settings is None:
        raise BackupError("this backup is incomplete (no database dump or settings)")
    with tempfile.TemporaryDirectory(prefix="jeg-restore-") as work:
        dump = Path(work) / DATABASE_FILES[dialect]
        _write_private(dump, dump_data)
        _restore_database(dialect, dump)
    counts = row_counts()
    expected = manifest["rows"]
    if counts != expected:
        differing = sorted(name for name in expected if counts.get(name) != expected[name])
        raise BackupError(f"restored, but these tables differ from the backup: {differing}")
    _write_private(settings_out, settings)
    return Restored(counts, settings_out, _restore_key_file(key))
