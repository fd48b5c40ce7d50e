"""Announcements: the operations that change where one stands (send, schedule, pause, resume,
cancel, retry failed deliveries, publish), each the one place its rule is checked and its
audit entry written, so the pages and `flask announcements` behave the same; and what the
delivery engine reads of an announcement (its audience, its rendered versions, its List-Id,
the retry backoff).

Drafting lives in drafts.py, previews and test sends in previews.py, what the back office
reads of progress in tracking.py."""

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from markupsafe import Markup

from jeg_contacts.audiences.services import audience_query
from jeg_contacts.audit.services import Actor, record
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import scheduling
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
)
from jeg_contacts.mailing.rendering import (
    PREFERENCES_SLOT,
    TOPICS_SLOT,
    UNSUBSCRIBE_SLOT,
    LanguageVersion,
    markdown_to_html,
    markdown_to_text,
)

# How far ahead a send can be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def _check_schedule(at: datetime, now: datetime) -> None:
    if at <= now:
        raise ValidationFailed(
            "send_at",
            f"Choose a time in the future: it is now {now:%Y-%m-%d %H:%M} UTC. "
            "To send at once, use “Send now”.",
        )
    if at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationFailed("send_at", "Choose a time within a year from now.")


def _delivery_count(announcement: Announcement) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.announcement_id == announcement.id)
    )


def _queue_audience(announcement: Announcement, due: datetime) -> int:
    """Snapshot the audience: one queued delivery per recipient, due at `due`. Returns how
    many were queued."""
    recipients = audience_query(effective_criteria(announcement))
    db.session.execute(
        sa.insert(Delivery).from_select(
            ["announcement_id", "contact_id", "status", "attempts", "next_attempt_at"],
            sa.select(
                sa.literal(announcement.id),
                recipients.subquery().c.id,
                sa.literal(DeliveryStatus.QUEUED.value),
                sa.literal(0),
                sa.literal(due, type_=Delivery.next_attempt_at.type),
            ),
        )
    )
    # Counted rather than taken from rowcount, which psycopg reports as -1 for INSERT ... SELECT.
    return _delivery_count(announcement)


def start_sending(
    announcement: Announcement, at: datetime | None = None, by: Actor | None = None
) -> int:
    """Send a draft now, or schedule it for `at`: snapshot the audience into queued deliveries
    (in this transaction) and audit it as done by `by`. Returns the number of recipients.

    Refused (ValidationFailed) unless it is a draft, `at` lies within the schedule window
    ("send_at") and the audience reaches somebody ("audience")."""
    if announcement.status is not AnnouncementStatus.DRAFT:
        raise ValidationFailed(
            "status", f"This announcement is already {announcement.status.value}."
        )
    now = utcnow()
    if at is not None:
        _check_schedule(at, now)
    if _delivery_count(announcement):
        raise ValidationFailed("status", "This announcement was already queued.")
    count = _queue_audience(announcement, at or now)
    if not count:
        raise ValidationFailed(
            "audience",
            "No active contact matches this audience, so there is nobody to send to. "
            "Nothing was queued.",
        )
    subject = announcement.subject_en
    if at is not None:
        announcement.status = AnnouncementStatus.SCHEDULED
        announcement.scheduled_at = at
        scheduling.queue_start(announcement, by.user.id if by and by.user else None)
        summary = f"Scheduled “{subject}” for {at:%Y-%m-%d %H:%M} UTC"
    else:
        announcement.status = AnnouncementStatus.SENDING
        announcement.started_at = now
        summary = f"Started sending “{subject}”"
    record_action(
        announcement,
        "scheduled" if at is not None else "send_started",
        summary + f" to {count:,} recipient(s)",
        {"recipients": count, "scheduled_at": at.isoformat() if at is not None else None},
        by,
    )
    return count


def pause(announcement: Announcement, by: Actor | None = None) -> None:
    """Stop sending until resumed, audited as done by `by`."""
    if announcement.status not in (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED):
        raise ValidationFailed("status", "Only a sending or scheduled announcement can be paused.")
    announcement.status = AnnouncementStatus.PAUSED
    announcement.paused_reason = announcement.paused_detail = None
    announcement.paused_at = utcnow()
    record_action(announcement, "paused", f"Paused: “{announcement.subject_en}”", by=by)


def resume(announcement: Announcement, by: Actor | None = None) -> None:
    """Go on sending (or wait for the scheduled time), audited as done by `by`."""
    if announcement.status is not AnnouncementStatus.PAUSED:
        raise ValidationFailed("status", "Only a paused announcement can be resumed.")
    record_action(announcement, "resumed", f"Resumed: “{announcement.subject_en}”", by=by)
    # A relay problem is over as far as staff know: the worker tries the relay again.
    announcement.paused_reason = announcement.paused_detail = announcement.paused_at = None
    scheduled = announcement.scheduled_at
    if announcement.started_at is None and scheduled is not None and scheduled > utcnow():
        # Paused before its time came: it waits for its time again.
        announcement.status = AnnouncementStatus.SCHEDULED
        return
    announcement.status = AnnouncementStatus.SENDING
    announcement.started_at = announcement.started_at or utcnow()


def cancel(announcement: Announcement, by: Actor | None = None) -> int:
    """Stop for good (a draft is discarded); deliveries not yet sent are skipped. Audited as
    done by `by`; returns how many were skipped."""
    if announcement.status in (AnnouncementStatus.SENT, AnnouncementStatus.CANCELLED):
        raise ValidationFailed(
            "status", f"This announcement is already {announcement.status.value}."
        )
    was_draft = announcement.status is AnnouncementStatus.DRAFT
    announcement.status = AnnouncementStatus.CANCELLED
    announcement.finished_at = utcnow()
    count = db.session.execute(
        sa.update(Delivery)
        .where(
            Delivery.announcement_id == announcement.id, Delivery.status == DeliveryStatus.QUEUED
        )
        .values(status=DeliveryStatus.SKIPPED, last_reply="cancelled")
    ).rowcount
    summary = f"Cancelled; {count} unsent message(s) skipped"
    if was_draft:
        summary = "Discarded the draft"
    record_action(
        announcement, "cancelled", f"{summary}: “{announcement.subject_en}”", {"count": count}, by
    )
    return count


def retry_failed(announcement: Announcement, by: Actor | None = None) -> int:
    """Queue failed deliveries again; a finished announcement goes back to sending. Audited
    as done by `by`; returns how many were queued again."""
    if announcement.status not in (
        AnnouncementStatus.SENDING,
        AnnouncementStatus.PAUSED,
        AnnouncementStatus.SENT,
    ):
        state = announcement.status.value
        raise ValidationFailed("status", f"A {state} announcement's failed deliveries stay failed.")
    count = db.session.execute(
        sa.update(Delivery)
        .where(
            Delivery.announcement_id == announcement.id, Delivery.status == DeliveryStatus.FAILED
        )
        .values(status=DeliveryStatus.QUEUED, attempts=0, next_attempt_at=utcnow())
    ).rowcount
    if count and announcement.status is AnnouncementStatus.SENT:
        announcement.status = AnnouncementStatus.SENDING
        announcement.finished_at = None
    summary = f"Queued {count} failed deliveries again: “{announcement.subject_en}”"
    record_action(announcement, "retried", summary, {"count": count}, by)
    return count


def set_published(announcement: Announcement, published: bool, by: Actor | None = None) -> None:
    """Show a sent announcement in the public archive, or take it out again (audited)."""
    if published and announcement.status is not AnnouncementStatus.SENT:
        raise ValidationFailed(
            "published", "Only an announcement that has been sent can be published."
        )
    announcement.published = published
    record_action(
        announcement,
        "published" if published else "unpublished",
        ("Published " if published else "Took out of the public archive ")
        + f"“{announcement.subject_en}”",
        by=by,
    )


def record_action(
    announcement: Announcement,
    action: str,
    summary: str,
    changes: dict | None = None,
    by: Actor | None = None,
) -> None:
    """Audit one action on an announcement, done by `by` (default: the signed-in staff
    member, else "system")."""
    record(f"announcement.{action}", "announcement", announcement.id, summary, changes, actor=by)


# --- What the delivery engine reads of an announcement ---------------------------------


def effective_criteria(announcement: Announcement) -> dict[str, Any]:
    """A saved audience is re-evaluated when used; otherwise the announcement's own filter."""
    if announcement.saved_audience is not None:
        return announcement.saved_audience.criteria
    return announcement.criteria or {}


def language_version(announcement: Announcement, language: str) -> LanguageVersion:
    """Render one language once: Markdown to safe HTML inside the email layout and footer."""
    from flask import render_template

    language = language if announcement.has_language(language) else "en"
    subject = announcement.subject(language)
    source = announcement.body(language)
    context = {
        "subject": subject,
        "topics_slot": TOPICS_SLOT,
        "preferences_slot": PREFERENCES_SLOT,
        "unsubscribe_slot": UNSUBSCRIBE_SLOT,
        "language": language,
    }
    with force_locale(language):
        text = render_template("email/announcement.txt", body=markdown_to_text(source), **context)
        html = render_template(
            "email/announcement.html", body=Markup(markdown_to_html(source)), **context
        )
    return LanguageVersion(language=language, subject=subject, text=text, html=html)


def list_id() -> str:
    host = current_app.config["BASE_URL"].split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return f"JEG announcements <announcements.{host or 'localhost'}>"


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base … capped at one hour."""
    base = current_app.config["DELIVERY_RETRY_BASE_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))
