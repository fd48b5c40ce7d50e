"""Sliding-window counters kept in the database, so every web worker sees the same limits."""

import hashlib
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jeg_contacts.extensions import UTCDateTime, db, utcnow


class RateLimitHit(db.Model):
    __tablename__ = "rate_limit_hits"
    __table_args__ = (sa.Index("ix_rate_limit_hits_bucket_key_at", "bucket", "key_hash", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(sa.String(40))
    # Hashed so the table holds no addresses in clear.
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def recent_count(bucket: str, key: str, window: timedelta) -> int:
    """How many hits `key` has in `bucket` within `window`; older hits are dropped as we go."""
    key_hash = _hash(key)
    since = utcnow() - window
    db.session.execute(
        sa.delete(RateLimitHit).where(
            RateLimitHit.bucket == bucket,
            RateLimitHit.key_hash == key_hash,
            RateLimitHit.at < since,
        )
    )
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(RateLimitHit)
        .where(RateLimitHit.bucket == bucket, RateLimitHit.key_hash == key_hash)
    )


def record(bucket: str, key: str) -> None:
    db.session.add(RateLimitHit(bucket=bucket, key_hash=_hash(key), at=utcnow()))
    db.session.flush()


def allow(bucket: str, key: str, limit: int, window: timedelta) -> bool:
    """Record one use of `key` in `bucket` if fewer than `limit` happened within `window`."""
    if recent_count(bucket, key, window) >= limit:
        return False
    record(bucket, key)
    return True
