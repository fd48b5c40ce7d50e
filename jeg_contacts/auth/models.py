"""Secretariat staff accounts, their signed-in sessions and their failed logins."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jeg_contacts.extensions import UTCDateTime, db, db_enum, utcnow


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(db_enum(Role, "user_role"), default=Role.VIEWER)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The signed-in session this object was loaded for (auth.services sets it). It is what
    # Flask-Login keeps in the cookie, so a cookie names one server-side session, not an
    # account: ending the session makes every copy of the cookie worthless.
    session_id = None  # str once set; not annotated, which would ask the ORM to map it

    # UserMixin compares users by get_id(), which here names a session (or none yet). The
    # database session holds one object per account, so identity is the right equality.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        if self.session_id is None:
            raise RuntimeError("start a staff session (auth.services) before login_user()")
        return self.session_id

    def has_role(self, role: Role) -> bool:
        return self.active and self.role.rank >= role.rank


class StaffSession(db.Model):
    """One signed-in browser. The cookie holds a random id; only its hash is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Written at most once a minute (see auth.services.SEEN_WRITE_INTERVAL).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class LoginFailure(db.Model):
    """A refused password login, kept while it counts towards a lock. The address typed and
    the client's network are stored as keyed hashes, never in clear."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_account_client_at", "account_key", "client_key", "at"),
        sa.Index("ix_login_failures_client_at", "client_key", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_key: Mapped[str] = mapped_column(sa.String(64))
    client_key: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
