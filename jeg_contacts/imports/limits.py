"""The import limits, read from the configuration in one place (config.py sets them from the
environment: IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, IMPORT_MAX_PENDING, IMPORT_MAX_UNPACKED_BYTES,
IMPORT_MAX_UNPACK_RATIO)."""

from flask import current_app

from jeg_contacts.config import UPLOAD_ENVELOPE_BYTES
from jeg_contacts.imports.unpacking import UnpackLimits


def max_upload_bytes() -> int:
    """The largest file the back office accepts: IMPORT_MAX_BYTES, unless MAX_CONTENT_LENGTH
    (less room for the rest of the form) is set lower."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    request_limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request_limit:
        limit = min(limit, request_limit - UPLOAD_ENVELOPE_BYTES)
    return limit


def max_rows() -> int:
    """The most data rows one file may hold."""
    return current_app.config["IMPORT_MAX_ROWS"]


def max_pending() -> int:
    """The most contacts one import may email a confirmation link (imported as pending)."""
    return current_app.config["IMPORT_MAX_PENDING"]


def unpack_limits() -> UnpackLimits:
    """What reading one XLSX file may unpack, in the back office and on the command line."""
    return UnpackLimits(
        total=current_app.config["IMPORT_MAX_UNPACKED_BYTES"],
        ratio=current_app.config["IMPORT_MAX_UNPACK_RATIO"],
    )
