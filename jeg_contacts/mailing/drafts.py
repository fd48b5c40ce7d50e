"""Drafting announcements: their texts in each language and their audience, checked and
audited; saved audiences; drafts copied from earlier announcements."""

import contextlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jeg_contacts.audiences.services import audience_filter, describe_audience
from jeg_contacts.audit.services import Actor, changes_between, record
from jeg_contacts.contacts.services import clean_line
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGE_NAMES_IN_ENGLISH, LANGUAGES
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementKind,
    AnnouncementStatus,
    SavedAudience,
)
from jeg_contacts.mailing.services import record_action

MAX_BODY_LENGTH = 100_000

# The back office is in English, so languages are named in English.
LANGUAGE_LABELS = LANGUAGE_NAMES_IN_ENGLISH


_AUDIT_SHORT_FIELDS = ("kind", "subject_en", "subject_fr", "subject_ru", "criteria")


_AUDIT_TEXT_FIELDS = ("body_en", "body_fr", "body_ru")


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


def saved_audiences() -> list[SavedAudience]:
    return list(db.session.scalars(sa.select(SavedAudience).order_by(SavedAudience.name)))


def saved_audience_named(name: str) -> SavedAudience | None:
    name = " ".join((name or "").split())
    return db.session.scalar(sa.select(SavedAudience).where(SavedAudience.name == name))
