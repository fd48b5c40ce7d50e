"""Who may open what: every /admin endpoint needs a login, and its declared role."""

from collections.abc import Callable
from typing import TypeVar

from flask import Response, abort, current_app, redirect, request, url_for
from flask_login import LoginManager, current_user
from sqlalchemy.exc import OperationalError

from jeg_contacts.auth import services
from jeg_contacts.auth.models import Role, User
from jeg_contacts.extensions import db

F = TypeVar("F", bound=Callable)

login_manager = LoginManager()
login_manager.login_view = "auth.login"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    # The cookie names a server-side session (remember-me cookies too, which are never
    # issued): nothing in a cookie outlives the session it was made for.
    return services.user_for_session(session_id)


def requires(role: Role) -> Callable[[F], F]:
    """Declare the least role a back-office view needs (viewer when not declared)."""

    def mark(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Let a view under /admin be opened without logging in (the login page itself)."""
    view.required_role = None  # type: ignore[attr-defined]
    return view


def required_role(endpoint: str | None) -> Role | None:
    """The role an endpoint needs: its declaration, viewer for anything else under /admin."""
    view = current_app.view_functions.get(endpoint or "")
    if view is None:
        return None
    if hasattr(view, "required_role"):
        return view.required_role
    rule_prefix = next((rule.rule for rule in current_app.url_map.iter_rules(endpoint)), "")
    return Role.VIEWER if rule_prefix.startswith("/admin") else None


def enforce_access() -> Response | None:
    """before_request hook, run ahead of CSRF checks so refusals are always 302 or 403."""
    role = required_role(request.endpoint)
    if role is None:
        return None
    if not current_user.is_authenticated:
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("auth.login", next=target))
    _keep_session_alive()
    if not current_user.has_role(role):
        abort(403)
    return None


def _keep_session_alive() -> None:
    # The first hook of every request, so nothing else is in the database session yet and
    # this commit carries the last-seen time only.
    if not services.note_session_activity():
        return
    try:
        db.session.commit()
    except OperationalError as error:
        # SQLite busy with a long write (an import): skip this time rather than fail a page
        # view; the next request a minute on tries again.
        if "database is locked" not in str(error.orig):
            raise
        db.session.rollback()
