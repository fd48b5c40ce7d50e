"""Accounts: creation, password checks with throttling, server-side sessions, roles,
disabling."""

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app, g
from werkzeug.security import check_password_hash, generate_password_hash

from jeg_contacts.auth.models import LoginFailure, Role, StaffSession, User
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.text import normalise_email

MIN_PASSWORD_LENGTH = 12
# A session's last request is stored at most this often, so that page views do not each
# write to the database; the idle limit is therefore exact to within this interval.
SEEN_WRITE_INTERVAL = timedelta(minutes=1)


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


def client_network(address: str | None) -> str:
    """What the login limits count as one client: an IPv4 address, or the /64 network of an
    IPv6 one (a single subscriber is usually given a whole /64 to pick addresses from)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _keyed_hash(kind: str, value: str) -> str:
    # Keyed with SECRET_KEY: a plain hash of an email address is undone by hashing guesses.
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else secret.encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _account_key(email: str) -> str:
    return _keyed_hash("account", email.strip().casefold())


def _failures_since(since: datetime, *conditions: sa.ColumnElement[bool]) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.at >= since, *conditions)
    )


def authenticate(email: str, password: str, client: str) -> User:
    """The user these credentials belong to, or LoginRefused; failures count towards locks.

    Every answer is the same whether or not an account has this email: failures are counted
    per email typed and client network, known or not, and the password hash is always
    checked. A lock holds for one email from one client network only, so that a stranger's
    failures never lock a member of staff out; each client network has its own limit too.
    """
    config = current_app.config
    now = utcnow()
    lock_window = timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    client_window = timedelta(minutes=config["LOGIN_CLIENT_WINDOW_MINUTES"])
    account_key = _account_key(email or "")
    client_key = _keyed_hash("client", client_network(client))
    db.session.execute(
        sa.delete(LoginFailure).where(LoginFailure.at < now - max(lock_window, client_window))
    )
    from_client = LoginFailure.client_key == client_key
    if _failures_since(now - client_window, from_client) >= config["LOGIN_MAX_FAILURES_PER_CLIENT"]:
        # Decided before the email is looked at, so it tells nothing about accounts.
        raise LoginRefused(
            "Too many failed logins from your network. Try again in "
            f"{config['LOGIN_CLIENT_WINDOW_MINUTES']} minutes.",
            status=429,
        )
    user = user_by_email(email or "")
    # Checked even when the answer is already known (unknown or locked address), so that the
    # time an answer takes does not tell either.
    valid = check_password_hash(user.password_hash if user else _dummy_hash(), password or "")
    locked = (
        _failures_since(now - lock_window, from_client, LoginFailure.account_key == account_key)
        >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    )
    if locked or user is None or not valid:
        # Refusals while locked count too: they use up the client's own allowance.
        db.session.add(LoginFailure(account_key=account_key, client_key=client_key, at=now))
        db.session.flush()
        if locked:
            raise LoginRefused(
                "Too many failed logins. Try again in "
                f"{config['LOGIN_LOCK_MINUTES']} minutes or ask an administrator.",
                status=429,
            )
        raise LoginRefused("The email or password is incorrect.")
    if not user.active:
        raise LoginRefused("This account is disabled. Ask an administrator to enable it.")
    db.session.execute(
        sa.delete(LoginFailure).where(LoginFailure.account_key == account_key, from_client)
    )
    user.last_login_at = now
    return user


def locked_accounts(users: list[User]) -> dict[int, int]:
    """For each of `users` locked out somewhere, how many client networks it is locked for."""
    config = current_app.config
    keys = {_account_key(user.email): user.id for user in users}
    since = utcnow() - timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    locked_pairs = db.session.scalars(
        sa.select(LoginFailure.account_key)
        .where(LoginFailure.account_key.in_(keys), LoginFailure.at >= since)
        .group_by(LoginFailure.account_key, LoginFailure.client_key)
        .having(sa.func.count() >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"])
    )
    counts: dict[int, int] = {}
    for account_key in locked_pairs:
        counts[keys[account_key]] = counts.get(keys[account_key], 0) + 1
    return counts


def unlock(user: User) -> None:
    """Forget the failed logins with `user`'s email, from every client network."""
    db.session.execute(
        sa.delete(LoginFailure).where(LoginFailure.account_key == _account_key(user.email))
    )


def _session_limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return (
        timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        timedelta(hours=config["SESSION_MAX_HOURS"]),
    )


def _token_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(user: User) -> None:
    """Open a server-side session for `user`, whose id `user.get_id()` then gives for the
    cookie. Call it after the password is checked, and again after it changes."""
    idle, longest = _session_limits()
    now = utcnow()
    # Ended sessions are refused whether or not their rows remain; they are cleared here, on
    # a request that writes anyway, rather than on page views.
    db.session.execute(
        sa.delete(StaffSession).where(
            sa.or_(StaffSession.last_seen_at < now - idle, StaffSession.created_at < now - longest)
        )
    )
    session_id = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(
            user=user, token_hash=_token_hash(session_id), created_at=now, last_seen_at=now
        )
    )
    db.session.flush()
    user.session_id = session_id


def user_for_session(session_id: str) -> User | None:
    """The account signed in as `session_id`, or None when that session has ended: logged
    out, replaced, idle for too long, too old, or its account disabled."""
    staff_session = db.session.scalar(
        sa.select(StaffSession).where(StaffSession.token_hash == _token_hash(session_id))
    )
    if staff_session is None or not staff_session.user.active:
        return None
    idle, longest = _session_limits()
    now = utcnow()
    if staff_session.last_seen_at <= now - idle or staff_session.created_at <= now - longest:
        return None
    g.staff_session = staff_session
    staff_session.user.session_id = session_id
    return staff_session.user


def note_session_activity() -> bool:
    """Move the current session's last request forward if it was stored over a minute ago;
    True when that needs a commit."""
    staff_session: StaffSession | None = g.get("staff_session")
    if staff_session is None:
        return False
    now = utcnow()
    if now - staff_session.last_seen_at < SEEN_WRITE_INTERVAL:
        return False
    staff_session.last_seen_at = now
    return True


def end_session(user: User) -> None:
    """Log out: the session `user` was loaded for ends, and every copy of its cookie with it."""
    if user.session_id is not None:
        db.session.execute(
            sa.delete(StaffSession).where(StaffSession.token_hash == _token_hash(user.session_id))
        )
        user.session_id = None


def end_all_sessions(user: User) -> None:
    db.session.execute(sa.delete(StaffSession).where(StaffSession.user_id == user.id))


def change_password(user: User, current: str, new: str) -> None:
    """Change one's own password: every session ends, and this one starts again afresh (so a
    copy of its cookie taken before the change is worthless too)."""
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationFailed("current_password", "The current password is incorrect.")
    set_password(user, new)
    start_session(user)


def set_password(user: User, new: str) -> None:
    _check_password_strength(new)
    user.password_hash = generate_password_hash(new)
    end_all_sessions(user)


def set_role(user: User, role: Role) -> None:
    if user.role is Role.ADMIN and role is not Role.ADMIN:
        _keep_an_admin(user)
    user.role = role


def disable_user(user: User) -> None:
    if user.role is Role.ADMIN:
        _keep_an_admin(user)
    user.active = False
    end_all_sessions(user)


def enable_user(user: User) -> None:
    user.active = True


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
