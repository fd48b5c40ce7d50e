"""Announcements, saved audiences, the delivery queue and the workers draining it."""

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jeg_contacts.auth.models import User
from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import UTCDateTime, db, db_enum, utcnow


class AnnouncementKind(StrEnum):
    ACTIVITY = "activity"
    GUIDANCE = "guidance"
    GENERAL = "general"


class AnnouncementStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class SavedAudience(db.Model):
    """A named contact filter, re-evaluated whenever it is used."""

    __tablename__ = "saved_audiences"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    # The filter's query arguments, as ContactFilter.to_args() gives them.
    criteria: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Announcement(db.Model):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AnnouncementKind] = mapped_column(
        db_enum(AnnouncementKind, "announcement_kind"), default=AnnouncementKind.GENERAL
    )
    subject_en: Mapped[str] = mapped_column(sa.String(200))
    body_en: Mapped[str] = mapped_column(sa.Text)
    subject_fr: Mapped[str | None] = mapped_column(sa.String(200))
    body_fr: Mapped[str | None] = mapped_column(sa.Text)
    subject_ru: Mapped[str | None] = mapped_column(sa.String(200))
    body_ru: Mapped[str | None] = mapped_column(sa.Text)
    # The audience as filter arguments; a saved audience is copied in when chosen.
    criteria: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    saved_audience_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("saved_audiences.id", ondelete="SET NULL")
    )
    status: Mapped[AnnouncementStatus] = mapped_column(
        db_enum(AnnouncementStatus, "announcement_status"),
        default=AnnouncementStatus.DRAFT,
        index=True,
    )
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the delivery worker paused the send because the mail relay itself failed
    # (login refused, TLS): what failed (`mailer.session.RelayReason`), the relay's words,
    # and when. Empty when staff paused it; cleared on resume.
    paused_reason: Mapped[str | None] = mapped_column(sa.String(40))
    paused_detail: Mapped[str | None] = mapped_column(sa.String(500))
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    saved_audience: Mapped[SavedAudience | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    def subject(self, language: str) -> str:
        return getattr(self, f"subject_{language}", None) or self.subject_en

    def body(self, language: str) -> str:
        return getattr(self, f"body_{language}", None) or self.body_en

    def has_language(self, language: str) -> bool:
        return language == "en" or bool(getattr(self, f"body_{language}", None))


class Delivery(db.Model):
    """One recipient of one announcement: the durable unit of work of the send queue."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("announcement_id", "contact_id"),
        # The worker's claim query: due, queued rows in id order.
        sa.Index("ix_deliveries_claim", "status", "next_attempt_at", "id"),
        sa.Index("ix_deliveries_announcement_status", "announcement_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        sa.ForeignKey("announcements.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        db_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The worker holding the row while it is `sending`; see Worker.heartbeat_at.
    worker_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    last_reply: Mapped[str | None] = mapped_column(sa.String(500))
    message_id: Mapped[str | None] = mapped_column(sa.String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    announcement: Mapped[Announcement] = relationship()
    contact: Mapped[Contact] = relationship()


class Worker(db.Model):
    """A running queue worker; a stale heartbeat means its claimed rows can be taken back."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(sa.String(200))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
