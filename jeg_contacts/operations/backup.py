"""`flask backup` and `flask restore`: one archive holding the database, the secret key and
the settings, and its restore into an empty database.

The archive (a gzipped tar, mode 0600) holds:
- `manifest.json`: the format, when, the database kind, its migration revision, rows per table;
- `database.sqlite3` (SQLite's online backup: consistent while the app writes) or
  `database.pgdump` (`pg_dump --format=custom`);
- `settings.env`: the environment variables the app reads, as they were set, and the
  SECRET_KEY in use (without it, every emailed link stops working);
- `secret_key`: the instance folder's key file, when the app uses one (development).

Never the outbox (whole messages to people, and no part of the state) nor import uploads
(transient, and full of personal data)."""

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from flask import current_app
from sqlalchemy.engine import URL

from jeg_contacts.extensions import db

FORMAT = 1
DATABASE_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
# Names the app reads from the environment that are not also the names of its settings.
_OTHER_VARIABLES = ("DATABASE_URL", "INSTANCE_PATH")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Restored:
    """What a restore did: the rows per table, where the settings went, the key file."""

    counts: dict[str, int]
    settings_file: Path
    secret_key_file: Path | None


def database_dialect() -> str:
    name = db.engine.dialect.name
    if name not in DATABASE_FILES:
        raise BackupError(f"cannot back up a {name} database: only SQLite and PostgreSQL")
    return name


def settings_variables() -> dict[str, str]:
    """The environment variables the app reads, as set now, and the SECRET_KEY in use."""
    names = {*current_app.config, *_OTHER_VARIABLES}
    settings = {name: os.environ[name] for name in sorted(names) if name in os.environ}
    settings["SECRET_KEY"] = current_app.config["SECRET_KEY"]
    return settings


def _quoted(value: str) -> str:
    # Double quotes with backslash escapes: read alike by systemd's EnvironmentFile and sh.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped.replace(chr(10), chr(92) + "n")}"'


def settings_file_text(settings: dict[str, str]) -> str:
    lines = [
        "# jeg-contacts settings, from a backup. Secret: SECRET_KEY and any passwords.",
        *(f"{name}={_quoted(value)}" for name, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def row_counts() -> dict[str, int]:
    existing = set(sa.inspect(db.engine).get_table_names())
    with db.engine.connect() as connection:
        return {
            table.name: connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in db.metadata.sorted_tables
            if table.name in existing
        }


def _revision() -> list[str]:
    with db.engine.connect() as connection:
        return sorted(MigrationContext.configure(connection).get_current_heads())


def libpq_connection(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for pg_dump/pg_restore, and their environment: the password
    goes in PGPASSWORD, never on a command line that any local user can read."""
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    return uri, environment


def run_client(command: list[str], environment: dict[str, str]) -> None:
    program = shutil.which(command[0])
    if program is None:
        raise BackupError(
            f"{command[0]} is not installed: install the PostgreSQL client of the server's "
            "version (Debian: apt install postgresql-client)"
        )
    done = subprocess.run(
        [program, *command[1:]], env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()}")


def _dump_database(dialect: str, target: Path) -> None:
    url = db.engine.url
    if dialect == "sqlite":
        source = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return
    uri, environment = libpq_connection(url)
    run_client(
        ["pg_dump", "--format=custom", "--no-password", f"--file={target}", f"--dbname={uri}"],
        environment,
    )


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def create_private(path: Path) -> int:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, 0o600)  # whatever the umask
    return descriptor


def backup(folder: Path) -> Path:
    """Write a backup archive into `folder` (created if missing); its path."""
    dialect = database_dialect()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"jeg-contacts-backup-{stamp}.tar.gz"
    partial = folder / f".{path.name}.partial"
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": dialect,
        "revision": _revision(),
        "rows": row_counts(),
    }
    key_file = Path(current_app.instance_path) / "secret_key"
    with tempfile.TemporaryDirectory(prefix="jeg-backup-") as work:
        dump = Path(work) / DATABASE_FILES[dialect]
        _dump_database(dialect, dump)
        with os.fdopen(create_private(partial), "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as archive:
                _add_bytes(archive, "manifest.json", json.dumps(manifest, indent=2).encode())
                settings = settings_file_text(settings_variables())
                _add_bytes(archive, "settings.env", settings.encode())
                if key_file.exists():
                    _add_bytes(archive, "secret_key", key_file.read_bytes())
                dump_info = archive.gettarinfo(str(dump), arcname=dump.name)
                dump_info.mode = 0o600
                with dump.open("rb") as dump_data:
                    archive.addfile(dump_info, dump_data)
            raw.flush()
            os.fsync(raw.fileno())
    # Complete or absent: a backup cut short never looks like a good one.
    partial.rename(path)
    return path
