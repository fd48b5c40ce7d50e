"""Announcements: drafting, audiences, the send snapshot, and the queue's state changes."""

import contextlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from markupsafe import Markup
from sqlalchemy.orm import selectinload

from jeg_contacts.audiences.services import (
    audience_filter,
    audience_query,
    audience_topic_ids,
    describe_audience,
)
from jeg_contacts.audit.services import Actor, changes_between, record
from jeg_contacts.contacts.models import Contact, ContactStatus, Topic, search_key
from jeg_contacts.contacts.services import clean_line
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.mailer.messages import external_url
from jeg_contacts.mailer.transports import deliver_ready
from jeg_contacts.mailing import scheduling
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementKind,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    SavedAudience,
    Worker,
)
from jeg_contacts.mailing.rendering import (
    PREFERENCES_SLOT,
    TOPICS_SLOT,
    UNSUBSCRIBE_SLOT,
    LanguageVersion,
    MessageFactory,
    Recipient,
    markdown_to_html,
)
from jeg_contacts.text import email_key, normalise_email

MAX_BODY_LENGTH = 100_000
# The back office is in English, so languages are named in English.
LANGUAGE_LABELS = {"en": "English", "fr": "French", "ru": "Russian"}
# How far ahead a send can be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


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
    draft: AnnouncementDraft, announcement: Announcement | None = None, by: Actor | None = None
) -> Announcement:
    """Create or update a draft (only drafts and scheduled announcements can change), audited
    as done by `by`."""
    values = _validated(draft)
    if announcement is None:
        before = None
        announcement = Announcement(created_by=by.user if by else None)
        db.session.add(announcement)
    elif announcement.status not in (AnnouncementStatus.DRAFT, AnnouncementStatus.SCHEDULED):
        raise ValidationFailed("status", "This announcement is already being sent.")
    else:
        before = audit_snapshot(announcement)
    for key, value in values.items():
        setattr(announcement, key, value)
    db.session.flush()
    changes = changes_between(before or {}, audit_snapshot(announcement))
    if before is None:
        summary = f"Drafted announcement “{announcement.subject_en}”"
        record_action(announcement, "created", summary, changes, by)
    elif changes:
        summary = f"Edited announcement “{announcement.subject_en}”"
        record_action(announcement, "edited", summary, changes, by)
    return announcement


def effective_criteria(announcement: Announcement) -> dict[str, Any]:
    """A saved audience is re-evaluated when used; otherwise the announcement's own filter."""
    if announcement.saved_audience is not None:
        return announcement.saved_audience.criteria
    return announcement.criteria or {}


def save_audience(name: str, criteria: dict[str, Any], by: Actor | None = None) -> SavedAudience:
    """Save an audience under `name` (replacing one of that name), audited as done by `by`."""
    name = clean_line("name", name, max_length=120, required=True)
    audience = db.session.scalar(sa.select(SavedAudience).where(SavedAudience.name == name))
    normalised = audience_filter(criteria).to_args()
    if audience is not None:
        audience.criteria = normalised
    else:
        user_id = by.user.id if by and by.user else None
        audience = SavedAudience(name=name, criteria=normalised, created_by_id=user_id)
        db.session.add(audience)
        db.session.flush()
    record(
        "saved_audience.saved",
        "saved_audience",
        audience.id,
        f"Saved the audience “{audience.name}”: {describe_audience(normalised)}",
        {"criteria": normalised},
        actor=by,
    )
    return audience


def _check_schedule(at: datetime, now: datetime) -> None:
    if at <= now:
        raise ValidationFailed(
            "send_at",
            f"Choose a time in the future: it is now {now:%Y-%m-%d %H:%M} UTC. "
            "To send at once, use “Send now”.",
        )
    if at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationFailed("send_at", "Choose a time within a year from now.")


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
    if db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.announcement_id == announcement.id)
    ):
        raise ValidationFailed("status", "This announcement was already queued.")
    recipients = audience_query(effective_criteria(announcement))
    db.session.execute(
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
    )
    # Counted rather than taken from rowcount, which psycopg reports as -1 for INSERT ... SELECT.
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.announcement_id == announcement.id)
    )
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
    record_action(announcement, "paused", f"Paused: “{announcement.subject_en}”", by=by)


def resume(announcement: Announcement, by: Actor | None = None) -> None:
    """Go on sending (or wait for the scheduled time), audited as done by `by`."""
    if announcement.status is not AnnouncementStatus.PAUSED:
        raise ValidationFailed("status", "Only a paused announcement can be resumed.")
    record_action(announcement, "resumed", f"Resumed: “{announcement.subject_en}”", by=by)
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


# --- What the back office shows and does ----------------------------------------------------

ANNOUNCEMENTS_PER_PAGE = 25
DELIVERIES_PER_PAGE = 50
# The rate shown while sending is measured over this window.
RATE_WINDOW_SECONDS = 60
# Stand-ins for a recipient's details in previews and in tests to unknown addresses.
SAMPLE_VALUES = {
    "given_name": "Anna",
    "family_name": "Example",
    "organisation": "Example Ministry of Environment",
}
_AUDIT_SHORT_FIELDS = ("kind", "subject_en", "subject_fr", "subject_ru", "criteria")
_AUDIT_TEXT_FIELDS = ("body_en", "body_fr", "body_ru")


def announcement_page(page: int, status: AnnouncementStatus | None = None) -> Any:
    """One page of announcements, newest first, optionally only those with `status`."""
    query = sa.select(Announcement).order_by(Announcement.id.desc())
    if status is not None:
        query = query.where(Announcement.status == status)
    return db.paginate(query, page=page, per_page=ANNOUNCEMENTS_PER_PAGE, error_out=False)


def counts_for(announcement_ids: list[int]) -> dict[int, dict[str, int]]:
    """status_counts() of several announcements in one query."""
    counts = {
        announcement_id: {status.value: 0 for status in DeliveryStatus} | {"total": 0}
        for announcement_id in announcement_ids
    }
    if not announcement_ids:
        return counts
    rows = db.session.execute(
        sa.select(Delivery.announcement_id, Delivery.status, sa.func.count())
        .where(Delivery.announcement_id.in_(announcement_ids))
        .group_by(Delivery.announcement_id, Delivery.status)
    ).all()
    for announcement_id, status, count in rows:
        counts[announcement_id][DeliveryStatus(status).value] = count
        counts[announcement_id]["total"] += count
    return counts


def unsaved_announcement(draft: AnnouncementDraft) -> Announcement:
    """An announcement built from a form that is not saved (for previews): never added to
    the session, and no rule is checked beyond keeping the texts to their maximum length."""
    values: dict[str, Any] = {"kind": AnnouncementKind.GENERAL}
    with contextlib.suppress(ValueError):
        values["kind"] = AnnouncementKind(draft.kind)
    for language in LANGUAGES:
        subject = " ".join((getattr(draft, f"subject_{language}") or "").split())[:200]
        body = (getattr(draft, f"body_{language}") or "")[:MAX_BODY_LENGTH]
        values[f"subject_{language}"] = subject or None
        values[f"body_{language}"] = body if body.strip() else None
    values["subject_en"] = values["subject_en"] or ""
    values["body_en"] = values["body_en"] or ""
    criteria = dict(draft.criteria or {})
    if draft.saved_audience_id is not None:
        saved = db.session.get(SavedAudience, draft.saved_audience_id)
        criteria = saved.criteria if saved is not None else criteria
    return Announcement(**values, criteria=criteria)


def _neutral_links() -> tuple[str, str]:
    # Previews and tests must not carry anybody's working preferences or unsubscribe link:
    # their links lead to the page where people ask for their own.
    url = external_url("signup.new_link")
    return url, url


def _topics_text(criteria: dict[str, Any], language: str) -> str:
    chosen = audience_topic_ids(criteria)
    query = sa.select(Topic).order_by(Topic.position, Topic.id)
    query = query.where(Topic.id.in_(chosen)) if chosen else query.where(Topic.active).limit(2)
    return ", ".join(topic.label(language) for topic in db.session.scalars(query))


def sample_recipient(
    announcement: Announcement, language: str, email: str = "someone@example.org"
) -> Recipient:
    """A recipient for previews and tests: the contact with this address if there is one,
    else sample details; links never lead to anybody's preferences."""
    values = dict(SAMPLE_VALUES)
    contact = None
    if email:
        contact = db.session.scalar(
            sa.select(Contact).where(
                Contact.email_key == email_key(email), Contact.status != ContactStatus.ERASED
            )
        )
    if contact is not None:
        values = {
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "organisation": contact.organisation.name if contact.organisation else "",
        }
    preferences_url, unsubscribe_url = _neutral_links()
    return Recipient(
        email=email,
        topics=_topics_text(effective_criteria(announcement), language),
        preferences_url=preferences_url,
        unsubscribe_url=unsubscribe_url,
        **values,
    )


@dataclass(frozen=True)
class Preview:
    """A message as its recipient reads it: built exactly as the worker builds it."""

    requested_language: str
    language: str
    subject: str
    text: str
    html: str

    @property
    def fallback(self) -> bool:
        return self.language != self.requested_language


def _factory() -> MessageFactory:
    return MessageFactory.for_sender(current_app.config["MAIL_FROM"], list_id())


def preview(announcement: Announcement, language: str, email: str = "") -> Preview:
    """The message one recipient would get in `language` (English when there is no such
    version), personalised with sample details."""
    language = language if language in LANGUAGES else "en"
    version = language_version(announcement, language)
    recipient = sample_recipient(announcement, version.language, email or "anna@example.org")
    raw = _factory().build(version, recipient).raw
    message = message_from_bytes(raw, policy=email_policy.default)
    return Preview(
        requested_language=language,
        language=version.language,
        subject=str(message["Subject"]),
        text=message.get_body(preferencelist=("plain",)).get_content(),
        html=message.get_body(preferencelist=("html",)).get_content(),
    )


TEST_SUBJECT_PREFIX = "[TEST] "


def record_test(
    announcement: Announcement, language: str, raw_address: str, by: Actor | None = None
) -> str:
    """Check the address a test goes to (ValidationFailed on "email") and audit the test as
    done by `by`; returns the address. Commit, then call send_test()."""
    address = checked_test_address(raw_address)
    language = language if language in LANGUAGES else "en"
    record_action(
        announcement,
        "test_sent",
        f"Test of “{announcement.subject_en}” in {LANGUAGE_LABELS[language]} to {address}",
        by=by,
    )
    return address


def send_test(announcement: Announcement, language: str, address: str) -> Preview:
    """Send one test message to `address`, built as the real ones are, its subject marked
    [TEST]. Call after the commit that records it: it talks to the mail server."""
    language = language if language in LANGUAGES else "en"
    version = language_version(announcement, language)
    version = replace(version, subject=TEST_SUBJECT_PREFIX + version.subject)
    recipient = sample_recipient(announcement, version.language, address)
    deliver_ready(address, _factory().build(version, recipient))
    return Preview(language, version.language, version.subject, "", "")


# A plain local-part@host address, such as the first administrator's admin@localhost.
_LOCAL_ADDRESS = re.compile(r"[^@\s\"<>(),;:\\\[\]]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def checked_test_address(raw: str) -> str:
    """The normalised address a test goes to (ValidationFailed on "email" if it is not one).

    Internal addresses (admin@localhost, name@mail.internal) are accepted too: a test goes to
    a staff member, and the mail server is the judge of where it can deliver."""
    try:
        return normalise_email(raw)
    except ValidationFailed:
        candidate = (raw or "").strip()
        if len(candidate) <= 254 and _LOCAL_ADDRESS.fullmatch(candidate):
            return candidate
        raise


def saved_audiences() -> list[SavedAudience]:
    return list(db.session.scalars(sa.select(SavedAudience).order_by(SavedAudience.name)))


def saved_audience_named(name: str) -> SavedAudience | None:
    name = " ".join((name or "").split())
    return db.session.scalar(sa.select(SavedAudience).where(SavedAudience.name == name))


def audit_snapshot(announcement: Announcement) -> dict[str, Any]:
    """The audited fields; long texts as their length, so the log stays readable."""
    snapshot: dict[str, Any] = {
        field: getattr(announcement, field) for field in _AUDIT_SHORT_FIELDS
    }
    snapshot["kind"] = announcement.kind.value if announcement.kind else None
    snapshot["saved_audience"] = (
        announcement.saved_audience.name if announcement.saved_audience else None
    )
    for field in _AUDIT_TEXT_FIELDS:
        text = getattr(announcement, field)
        snapshot[field] = f"{len(text):,} characters" if text else None
    return snapshot


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


def copy_as_draft(announcement: Announcement, by: Actor | None = None) -> Announcement:
    """A new draft with the same texts and audience (audited)."""
    copy = Announcement(
        kind=announcement.kind,
        criteria=dict(announcement.criteria or {}),
        saved_audience_id=announcement.saved_audience_id,
        created_by=by.user if by else None,
        **{
            f"{part}_{language}": getattr(announcement, f"{part}_{language}")
            for part in ("subject", "body")
            for language in LANGUAGES
        },
    )
    db.session.add(copy)
    db.session.flush()
    summary = f"Copied announcement {announcement.id} into a new draft"
    record_action(copy, "created", summary, by=by)
    return copy


@dataclass(frozen=True)
class Progress:
    """Where a send stands: counts, the recent rate and the time left at that rate."""

    status: AnnouncementStatus
    counts: dict[str, int]
    rate_per_second: float | None
    eta_seconds: int | None
    waiting_to_retry: int
    worker_running: bool

    @property
    def total(self) -> int:
        return self.counts["total"]

    @property
    def done(self) -> int:
        return self.counts["sent"] + self.counts["failed"] + self.counts["skipped"]

    @property
    def remaining(self) -> int:
        return self.counts["queued"] + self.counts["sending"]

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (AnnouncementStatus.SENT, AnnouncementStatus.CANCELLED)


def worker_running() -> bool:
    """Whether a queue worker has shown signs of life within its lease."""
    fresh = utcnow() - timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
    return bool(db.session.scalar(sa.select(sa.exists().where(Worker.heartbeat_at >= fresh))))


def progress(announcement: Announcement) -> Progress:
    counts = status_counts(announcement.id)
    now = utcnow()
    waiting = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(
            Delivery.announcement_id == announcement.id,
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.attempts > 0,
            Delivery.next_attempt_at > now,
        )
    )
    rate = eta = None
    if announcement.status is AnnouncementStatus.SENDING and announcement.started_at:
        window = min(RATE_WINDOW_SECONDS, max((now - announcement.started_at).total_seconds(), 1))
        recent = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(
                Delivery.announcement_id == announcement.id,
                Delivery.sent_at >= now - timedelta(seconds=window),
            )
        )
        rate = recent / window
        remaining = counts["queued"] + counts["sending"]
        if rate > 0 and remaining:
            eta = round(remaining / rate)
    return Progress(
        status=announcement.status,
        counts=counts,
        rate_per_second=rate,
        eta_seconds=eta,
        waiting_to_retry=waiting or 0,
        worker_running=worker_running(),
    )


FAILED_ONLY = "failed"


def delivery_log(
    announcement_id: int, q: str = "", status: DeliveryStatus | None = None, page: int = 1
) -> Any:
    """One page of an announcement's deliveries, searchable by name and address."""
    query = (
        sa.select(Delivery)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.announcement_id == announcement_id)
        .options(selectinload(Delivery.contact))
        .order_by(Delivery.id)
    )
    for word in search_key(q).split():
        query = query.where(
            sa.or_(
                Contact.search_name.contains(word, autoescape=True),
                Contact.email_key.contains(word, autoescape=True),
            )
        )
    if status is not None:
        query = query.where(Delivery.status == status)
    return db.paginate(query, page=page, per_page=DELIVERIES_PER_PAGE, error_out=False)
