"""The announcements blueprint and what its pages share (views.py, compose_views.py and
sending_views.py add the pages to it)."""

from enum import StrEnum
from typing import Any

from flask import Blueprint, abort
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from jeg_contacts.audiences.services import (
    all_topics,
    audience_filter,
    describe_audience,
)
from jeg_contacts.audit.services import Actor
from jeg_contacts.contacts.models import StakeholderType
from jeg_contacts.countries import country_groups
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import MAX_ID, db
from jeg_contacts.i18n import LANGUAGE_NAMES
from jeg_contacts.mailing import relay, tracking
from jeg_contacts.mailing.forms import (
    KIND_LABELS,
    LANGUAGE_LABELS,
)
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    DeliveryStatus,
    SavedAudience,
)

bp = Blueprint("mailing", __name__, url_prefix="/admin")

# The filters an audience is built from (ContactFilter's query arguments).
AUDIENCE_ARGS = ("topic", "type", "country", "language")
MAX_SEARCH_LENGTH = 200
EDITABLE = (AnnouncementStatus.DRAFT, AnnouncementStatus.SCHEDULED)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "language_labels": LANGUAGE_LABELS,
        "statuses": AnnouncementStatus,
        "delivery_statuses": DeliveryStatus,
    }


# --- Helpers ------------------------------------------------------------------------------


def announcement_or_404(announcement_id: int) -> Announcement:
    if announcement_id > MAX_ID:  # the database would refuse the number itself
        abort(404)
    return db.get_or_404(Announcement, announcement_id)


def member(enum: type[StrEnum], raw: str | None) -> Any:
    """The member of `enum` with value `raw`, or None."""
    return next((member for member in enum if member.value == raw), None)


def criteria_from(values: MultiDict) -> dict[str, list[str]]:
    """The audience filters among submitted values, normalised as they are stored."""
    return audience_filter({key: values.getlist(key) for key in AUDIENCE_ARGS}).to_args()


def saved_audience(raw: str | None) -> SavedAudience | None:
    raw = raw or ""
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        return None
    return db.session.get(SavedAudience, int(raw))


def describe(criteria: dict[str, Any]) -> str:
    return describe_audience(criteria)


def count_text(count: int) -> str:
    return f"{count:,} active contact" + ("" if count == 1 else "s")


def audience_options() -> dict[str, Any]:
    return {
        "topic_options": [
            (str(topic.id), topic.label_en + ("" if topic.active else " (archived)"))
            for topic in all_topics()
        ],
        "type_options": [(member.value, member.label) for member in StakeholderType],
        "country_groups": country_groups("en"),
        "language_options": list(LANGUAGE_NAMES.items()),
    }


def show_error(form: Any, error: ValidationFailed, field_map: dict[str, str] | None = None):
    db.session.rollback()
    name = (field_map or {}).get(error.field, error.field)
    field = getattr(form, name, None) if name else None
    if field is None or not hasattr(field, "errors"):
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


def loaded_stamp(announcement: Announcement) -> str:
    return announcement.updated_at.isoformat() if announcement.updated_at else ""


def actor() -> Actor:
    """The signed-in staff member, as the services audit them."""
    return Actor.staff(current_user._get_current_object())


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} minute" + ("" if minutes == 1 else "s")
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


def progress_data(announcement: Announcement, progress: tracking.Progress) -> dict[str, Any]:
    """The progress of a send as the page shows it; also the JSON the page polls."""
    counts = progress.counts
    summary = (
        f"{progress.done:,} of {progress.total:,} done ({progress.percent}%)"
        if progress.total
        else "No recipients queued."
    )
    rate_text = eta_text = ""
    rate = progress.rate_per_second
    if rate is not None:
        rate_text = f"{progress.rate_per_second * 60:,.0f} messages per minute (last minute)"
    if announcement.status is AnnouncementStatus.SENDING:
        if progress.eta_seconds is not None:
            eta_text = f"Time left: {duration(progress.eta_seconds)}."
        elif progress.remaining and progress.waiting_to_retry >= progress.remaining:
            eta_text = "Waiting to retry temporary failures."
        elif progress.remaining:
            eta_text = "Waiting for the delivery worker to start sending."
    elif announcement.status is AnnouncementStatus.SCHEDULED and announcement.scheduled_at:
        eta_text = f"Starts at {announcement.scheduled_at:%Y-%m-%d %H:%M} UTC."
    elif announcement.status is AnnouncementStatus.PAUSED:
        eta_text = "Paused: nothing is sent until it is resumed."
    warning = ""
    if announcement.status is AnnouncementStatus.PAUSED and announcement.paused_reason:
        warning = (
            relay.explain(announcement.paused_reason)
            + " "
            + _(
                "Paused by the delivery worker at %(when)s UTC; the relay said: %(detail)s",
                when=f"{announcement.paused_at:%Y-%m-%d %H:%M}" if announcement.paused_at else "?",
                detail=announcement.paused_detail or "?",
            )
        )
    if (
        announcement.status in (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED)
        and progress.remaining
        and not progress.worker_running
    ):
        warning = (
            "No delivery worker is running, so nothing is being sent. Start one with "
            "“flask --app wsgi worker” (make run starts one)."
        )
    return {
        "id": announcement.id,
        "status": announcement.status.value,
        "finished": progress.finished,
        "counts": counts,
        "done": progress.done,
        "total": progress.total,
        "percent": progress.percent,
        "waiting_to_retry": progress.waiting_to_retry,
        "rate_per_minute": round(rate * 60, 1) if rate is not None else None,
        "eta_seconds": progress.eta_seconds,
        "summary": summary,
        "rate_text": rate_text,
        "eta_text": eta_text,
        "warning": warning,
    }
