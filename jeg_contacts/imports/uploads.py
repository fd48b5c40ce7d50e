"""Uploaded files kept between an import's dry run and its commit.

Each upload lives in instance/imports/<token>/: the file as sent, a JSON note of who sent it
and the settings chosen so far, and the report of rejected rows. Its dry runs and import are
jobs (jobs.py) whose rows name the upload as their subject, and hold the preview and the
result. A random token names it; the file is deleted once imported, and anything older than
a day is swept away, because these files hold personal data.
"""

import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from flask import current_app

from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.extensions import utcnow
from jeg_contacts.imports import limits
from jeg_contacts.imports.mapping import ImportSettings
from jeg_contacts.imports.reading import Table, open_table

KEEP_FOR = timedelta(days=1)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_CHUNK = 1024 * 1024


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


def write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON in one step: a reader in any thread or process sees
    the old file or the new one, never half of one (a temporary file, then os.replace)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """What write_json wrote at `path`, or None if there is nothing (readable) there."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _root() -> Path:
    return Path(current_app.instance_path) / "imports"


def display_name(raw: str | None) -> str:
    """The file's own name, for pages and the consent log; never used as a path."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    return name.strip()[:120] or "uploaded file"


@dataclass
class Upload:
    token: str
    file_name: str
    size: int
    user_id: int
    uploaded_at: str
    encoding: str = "auto"
    delimiter: str = "auto"
    settings: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    @property
    def subject(self) -> str:
        """How the rows of its jobs name it."""
        return subject_of(self.token)

    @property
    def folder(self) -> Path:
        return _root() / self.token

    @property
    def path(self) -> Path:
        return self.folder / "upload"

    @property
    def report_path(self) -> Path:
        return self.folder / "rejected.csv"

    @property
    def size_label(self) -> str:
        if self.size < 1024 * 1024:
            return f"{max(self.size / 1024, 1):,.0f} KB"
        return f"{self.size / 1024 / 1024:,.1f} MB"

    @property
    def has_report(self) -> bool:
        return self.report_path.exists() and self.report_path.stat().st_size > 0

    def save(self) -> None:
        """Keep the reading options and settings (the result is its import job's)."""
        note = {key: value for key, value in asdict(self).items() if key != "result"}
        write_json(self.folder / "upload.json", note)

    def open_table(self) -> Table:
        return open_table(
            self.path,
            encoding=self.encoding,
            delimiter=self.delimiter,
            max_bytes=limits.max_upload_bytes(),
            max_rows=limits.max_rows(),
            unpack_limits=limits.unpack_limits(),
        )

    def import_settings(self, header: list[str], suggested: list[str]) -> ImportSettings:
        """The settings chosen so far, or the suggested ones for a fresh upload."""
        chosen = self.settings or {}
        mapping = chosen.get("mapping") or suggested
        if len(mapping) != len(header):
            mapping = suggested
        return ImportSettings(
            mapping=tuple(mapping),
            status=ContactStatus(chosen.get("status", ContactStatus.PENDING.value)),
            basis=str(chosen.get("basis", "")),
            update_existing=bool(chosen.get("update_existing", False)),
            default_type=chosen.get("default_type", ""),
            default_language=chosen.get("default_language", "en"),
            default_topic_ids=tuple(chosen.get("default_topic_ids", ())),
        )

    def remember(self, settings: ImportSettings) -> None:
        self.settings = {
            "mapping": list(settings.mapping),
            "status": settings.status.value,
            "basis": settings.basis,
            "update_existing": settings.update_existing,
            "default_type": settings.default_type,
            "default_language": settings.default_language,
            "default_topic_ids": list(settings.default_topic_ids),
        }

    def forget_file(self) -> None:
        """Delete the uploaded file itself, keeping the note and the report."""
        self.path.unlink(missing_ok=True)


def store(stream: IO[bytes], file_name: str, user_id: int, *, max_bytes: int) -> Upload:
    """Save an uploaded file under a new token; UploadTooLarge past `max_bytes`."""
    remove_stale()
    upload = Upload(
        token=secrets.token_urlsafe(24),
        file_name=display_name(file_name),
        size=0,
        user_id=user_id,
        uploaded_at=utcnow().isoformat(),
    )
    upload.folder.mkdir(parents=True, mode=0o700)
    try:
        with upload.path.open("wb") as out:
            while chunk := stream.read(_CHUNK):
                upload.size += len(chunk)
                if upload.size > max_bytes:
                    raise UploadTooLarge(max_bytes)
                out.write(chunk)
    except BaseException:
        discard(upload)
        raise
    upload.save()
    return upload


def load(token: str, user_id: int) -> Upload | None:
    """The upload with this token, if it exists and belongs to `user_id`."""
    if not _TOKEN.match(token or ""):
        return None
    data = read_json(_root() / token / "upload.json")
    if not isinstance(data, dict):
        return None
    upload = Upload(**{key: value for key, value in data.items() if key in Upload.__annotations__})
    if upload.token != token or upload.user_id != user_id:
        return None
    return upload


def subject_of(token: str) -> str:
    return f"upload:{token}"


def exists(token: str) -> bool:
    return bool(_TOKEN.match(token or "")) and (_root() / token).is_dir()


def recent(user_id: int) -> list[Upload]:
    """This person's uploads still kept, newest first."""
    root = _root()
    if not root.is_dir():
        return []
    found = [load(folder.name, user_id) for folder in root.iterdir() if folder.is_dir()]
    return sorted(
        (upload for upload in found if upload is not None),
        key=lambda upload: upload.uploaded_at,
        reverse=True,
    )


def discard(upload: Upload) -> None:
    shutil.rmtree(upload.folder, ignore_errors=True)


def remove_stale(now: datetime | None = None) -> None:
    """Delete uploads older than KEEP_FOR, whoever made them."""
    root = _root()
    if not root.is_dir():
        return
    limit = ((now or utcnow()) - KEEP_FOR).timestamp()
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)
