"""Announcements: drafting, audiences, the send snapshot, and the queue's state changes."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.contacts.services import clean_line
from jeg_contacts.directory.services import ContactFilter, filter_contacts
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementKind,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    SavedAudience,
)
from jeg_contacts.mailing.rendering import (
    PREFERENCES_SLOT,
    TOPICS_SLOT,
    UNSUBSCRIBE_SLOT,
    LanguageVersion,
    markdown_to_html,
)

MAX_BODY_LENGTH = 100_000


@dataclass(frozen=True)
class AnnouncementDraft:
    subject_en: str
    body_en: str
    kind: str = AnnouncementKind.GENERAL.value
    subject_fr: str | None = None
    body_fr: str | None = None
    subject_ru: str | None = None
    body_ru: str | None = None
    criteria: dict[str, Any] | None = None
    saved_audience_id: int | None = None


def audience_filter(criteria: dict[str, Any]) -> ContactFilter:
    """The directory filter stored as an audience's criteria (ContactFilter.to_args())."""
    return ContactFilter.from_args(MultiDict(criteria or {}))


def audience_query(criteria: dict[str, Any]) -> sa.Select:
    """The active contacts an audience reaches, as a select of Contact ids. Whatever the
    criteria say about status, only active contacts ever receive announcements."""
    query = filter_contacts(sa.select(Contact.id), audience_filter(criteria))
    return query.where(Contact.status == ContactStatus.ACTIVE)


def audience_size(criteria: dict[str, Any]) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(audience_query(criteria).subquery())
    )


def audience_topic_ids(criteria: dict[str, Any]) -> set[int]:
    """Topics the audience selects on; empty when it does not filter by topic."""
    return set(audience_filter(criteria).topic_ids)


def _validated(draft: AnnouncementDraft) -> dict[str, Any]:
    try:
        kind = AnnouncementKind(draft.kind)
    except ValueError:
        raise ValidationFailed("kind", "Choose a kind from the list.") from None
    values: dict[str, Any] = {"kind": kind}
    for language in LANGUAGES:
        subject = clean_line(
            f"subject_{language}",
            getattr(draft, f"subject_{language}"),
            max_length=200,
            required=language == "en",
        )
        body = (getattr(draft, f"body_{language}") or "").strip()
        if language == "en" and not body:
            raise ValidationFailed("body_en", "Write the English text.")
        if len(body) > MAX_BODY_LENGTH:
            raise ValidationFailed(f"body_{language}", "The text is too long.")
        if bool(subject) != bool(body):
            field = f"body_{language}" if subject else f"subject_{language}"
            raise ValidationFailed(field, "Give both a subject and a text, or neither.")
        values[f"subject_{language}"] = subject or None
        values[f"body_{language}"] = body or None
    values["subject_en"] = values["subject_en"] or ""
    criteria = dict(draft.criteria or {})
    if draft.saved_audience_id is not None:
        saved = db.session.get(SavedAudience, draft.saved_audience_id)
        if saved is None:
            raise ValidationFailed("saved_audience_id", "Choose a saved audience from the list.")
        values["saved_audience_id"] = saved.id
    else:
        values["saved_audience_id"] = None
    values["criteria"] = audience_filter(criteria).to_args()
    return values


def save_draft(
    draft: AnnouncementDraft, announcement: Announcement | None = None, user=None
) -> Announcement:
    """Create or update a draft (only drafts and scheduled announcements can change)."""
    values = _validated(draft)
    if announcement is None:
        announcement = Announcement(created_by=user)
        db.session.add(announcement)
    elif announcement.status not in (AnnouncementStatus.DRAFT, AnnouncementStatus.SCHEDULED):
        raise ValidationFailed("status", "This announcement is already being sent.")
    for key, value in values.items():
        setattr(announcement, key, value)
    db.session.flush()
    return announcement


def effective_criteria(announcement: Announcement) -> dict[str, Any]:
    """A saved audience is re-evaluated when used; otherwise the announcement's own filter."""
    if announcement.saved_audience is not None:
        return announcement.saved_audience.criteria
    return announcement.criteria or {}


def save_audience(name: str, criteria: dict[str, Any], user=None) -> SavedAudience:
    name = clean_line("name", name, max_length=120, required=True)
    existing = db.session.scalar(sa.select(SavedAudience).where(SavedAudience.name == name))
    normalised = audience_filter(criteria).to_args()
    if existing is not None:
        existing.criteria = normalised
        return existing
    audience = SavedAudience(
        name=name, criteria=normalised, created_by_id=getattr(user, "id", None)
    )
    db.session.add(audience)
    db.session.flush()
    return audience


def start_sending(announcement: Announcement, at: datetime | None = None) -> int:
    """Snapshot the audience into queued deliveries (in this transaction) and start or
    schedule the send. Returns the number of recipients."""
    if announcement.status not in (AnnouncementStatus.DRAFT, AnnouncementStatus.SCHEDULED):
        raise ValidationFailed("status", f"This announcement is {announcement.status.value}.")
    if db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.announcement_id == announcement.id)
    ):
        raise ValidationFailed("status", "This announcement was already queued.")
    now = utcnow()
    recipients = audience_query(effective_criteria(announcement))
    count = db.session.execute(
        sa.insert(Delivery).from_select(
            ["announcement_id", "contact_id", "status", "attempts", "next_attempt_at"],
            sa.select(
                sa.literal(announcement.id),
                recipients.subquery().c.id,
                sa.literal(DeliveryStatus.QUEUED.value),
                sa.literal(0),
                sa.literal(at or now, type_=Delivery.next_attempt_at.type),
            ),
        )
    ).rowcount
    if at is not None and at > now:
        announcement.status = AnnouncementStatus.SCHEDULED
        announcement.scheduled_at = at
    else:
        announcement.status = AnnouncementStatus.SENDING
        announcement.started_at = now
    return count


def pause(announcement: Announcement) -> None:
    if announcement.status not in (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED):
        raise ValidationFailed("status", "Only a sending or scheduled announcement can be paused.")
    announcement.status = AnnouncementStatus.PAUSED


def resume(announcement: Announcement) -> None:
    if announcement.status is not AnnouncementStatus.PAUSED:
        raise ValidationFailed("status", "Only a paused announcement can be resumed.")
    announcement.status = AnnouncementStatus.SENDING
    announcement.started_at = announcement.started_at or utcnow()


def cancel(announcement: Announcement) -> int:
    """Stop for good; deliveries not yet sent are skipped. Returns how many were skipped."""
    if announcement.status in (AnnouncementStatus.SENT, AnnouncementStatus.CANCELLED):
        raise ValidationFailed(
            "status", f"This announcement is already {announcement.status.value}."
        )
    announcement.status = AnnouncementStatus.CANCELLED
    announcement.finished_at = utcnow()
    return db.session.execute(
        sa.update(Delivery)
        .where(
            Delivery.announcement_id == announcement.id, Delivery.status == DeliveryStatus.QUEUED
        )
        .values(status=DeliveryStatus.SKIPPED, last_reply="cancelled")
    ).rowcount


def retry_failed(announcement: Announcement) -> int:
    """Queue failed deliveries again; a finished announcement goes back to sending."""
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
    return count


def status_counts(announcement_id: int) -> dict[str, int]:
    """{"queued": n, "sending": n, "sent": n, "failed": n, "skipped": n, "total": n}."""
    rows = db.session.execute(
        sa.select(Delivery.status, sa.func.count())
        .where(Delivery.announcement_id == announcement_id)
        .group_by(Delivery.status)
    ).all()
    counts = {status.value: 0 for status in DeliveryStatus}
    for status, count in rows:
        counts[DeliveryStatus(status).value] = count
    counts["total"] = sum(counts.values())
    return counts


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
        text = render_template("email/announcement.txt", body=source, **context)
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
