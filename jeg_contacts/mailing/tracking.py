"""What the back office reads of announcements and their sends: the list, delivery counts,
progress (rate, time left, whether a worker runs) and the searchable delivery log."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from jeg_contacts.contacts.models import Contact, search_key
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    Worker,
)

ANNOUNCEMENTS_PER_PAGE = 25


DELIVERIES_PER_PAGE = 50


# The rate shown while sending is measured over this window.
RATE_WINDOW_SECONDS = 60


def announcement_page(page: int, status: AnnouncementStatus | None = None) -> Any:
    """One page of announcements, newest first, optionally only those with `status`."""
    query = sa.select(Announcement).order_by(Announcement.id.desc())
    if status is not None:
        query = query.where(Announcement.status == status)
    return db.paginate(query, page=page, per_page=ANNOUNCEMENTS_PER_PAGE, error_out=False)


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
