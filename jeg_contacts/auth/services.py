"""Accounts: creation, password checks with throttling, roles, disabling."""

import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from jeg_contacts import ratelimit
from jeg_contacts.auth.models import Role, User
from jeg_contacts.contacts.services import normalise_email
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow

MIN_PASSWORD_LENGTH = 12


@cache
def _dummy_hash() -> str:
    """Checked against when the email is unknown, so a wrong address costs the same time as a
    wrong password and response times do not reveal which accounts exist. Made on first use:
    hashing costs about 0.1 s, which every command's start-up would otherwise pay."""
    return generate_password_hash("not a real password")


class LoginRefused(Exception):
    """Wrong credentials, or logins locked; `message` is safe to show."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "password", f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."
        )
    if len(password) > 1024:
        raise ValidationFailed("password", "Use at most 1024 characters for the password.")


def user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().casefold()))


def create_user(email: str, password: str, role: Role) -> User:
    address = normalise_email(email).casefold()
    if user_by_email(address) is not None:
        raise ValidationFailed("email", "A staff account with this email already exists.")
    _check_password_strength(password)
    user = User(email=address, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str, client: str) -> User:
    """The user these credentials belong to, or LoginRefused; failures count towards locks."""
    config = current_app.config
    client_window = timedelta(minutes=config["LOGIN_CLIENT_WINDOW_MINUTES"])
    if (
        ratelimit.recent_count("login-failure", client, client_window)
        >= config["LOGIN_MAX_FAILURES_PER_CLIENT"]
    ):
        raise LoginRefused(
            "Too many failed logins from your network. Try again in "
            f"{config['LOGIN_CLIENT_WINDOW_MINUTES']} minutes.",
            status=429,
        )
    user = user_by_email(email or "")
    now = utcnow()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise LoginRefused(
            "This account is locked after too many failed logins. Try again in "
            f"{config['LOGIN_LOCK_MINUTES']} minutes or ask an administrator.",
            status=429,
        )
    valid = check_password_hash(user.password_hash if user else _dummy_hash(), password or "")
    if user is not None and valid and not user.active:
        raise LoginRefused("This account is disabled. Ask an administrator to enable it.")
    if user is None or not valid:
        ratelimit.record("login-failure", client)
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]:
                user.locked_until = now + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
                user.failed_logins = 0
        raise LoginRefused("The email or password is incorrect.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationFailed("current_password", "The current password is incorrect.")
    set_password(user, new)


def set_password(user: User, new: str) -> None:
    _check_password_strength(new)
    user.password_hash = generate_password_hash(new)
    user.session_token = secrets.token_urlsafe(32)  # signs out every other session


def set_role(user: User, role: Role) -> None:
    if user.role is Role.ADMIN and role is not Role.ADMIN:
        _keep_an_admin(user)
    user.role = role


def disable_user(user: User) -> None:
    if user.role is Role.ADMIN:
        _keep_an_admin(user)
    user.active = False
    user.session_token = secrets.token_urlsafe(32)


def enable_user(user: User) -> None:
    user.active = True
    user.locked_until = None
    user.failed_logins = 0


def _keep_an_admin(leaving: User) -> None:
    others = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN, User.active, User.id != leaving.id)
    )
    if not others:
        raise ValidationFailed("role", "At least one active administrator must remain.")


@dataclass(frozen=True)
class BootstrapAccount:
    email: str
    password: str


def bootstrap_admin(email: str = "admin@localhost") -> BootstrapAccount | None:
    """Create a first administrator with a random password when no account exists yet."""
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        return None
    password = secrets.token_urlsafe(12)
    db.session.add(
        User(email=email, password_hash=generate_password_hash(password), role=Role.ADMIN)
    )
    db.session.flush()
    return BootstrapAccount(email, password)
