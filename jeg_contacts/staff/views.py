"""Login, logout, own password, and staff account management (admin)."""

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from jeg_contacts.audit.services import record
from jeg_contacts.auth import services
from jeg_contacts.auth.access import public, requires
from jeg_contacts.auth.models import Role, User
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.staff.forms import ChangePasswordForm, LoginForm, NewUserForm, RoleForm

bp = Blueprint("auth", __name__, url_prefix="/admin")


def _safe_next(target: str | None) -> str:
    """Only local back-office paths; anything else (other hosts, //evil) goes to the dashboard."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/admin"):
            return target
    return url_for("dashboard.index")


def _field_error(form, error: ValidationFailed) -> None:
    db.session.rollback()
    field = getattr(form, error.field, None)
    if field is None:
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.authenticate(
                form.email.data, form.password.data, request.remote_addr or "unknown"
            )
        except services.LoginRefused as refused:
            db.session.commit()  # failure counters and locks must persist
            form.form_errors.append(refused.message)
            status = refused.status if refused.status != 200 else 400
        else:
            services.start_session(user)
            login_user(user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@public
def logout() -> Response:
    if current_user.is_authenticated:
        services.end_session(current_user)
        db.session.commit()
    logout_user()
    flash("You are logged out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> Response | str | tuple[str, int]:
    form = ChangePasswordForm()
    user = current_user._get_current_object()
    if form.validate_on_submit():
        try:
            services.change_password(user, form.current_password.data, form.password.data)
            record("user.password_changed", "user", user.id, "Changed own password")
            db.session.commit()
        except ValidationFailed as error:
            _field_error(form, error)
        else:
            login_user(user)  # the cookie gets this browser's new session
            flash("Your password is changed. Other sessions are signed out.", "success")
            return redirect(url_for("dashboard.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/change_password.html", form=form), status


@bp.get("/users")
@requires(Role.ADMIN)
def users() -> str:
    return _users_page(NewUserForm())


def _users_page(new_user: NewUserForm) -> str:
    accounts = db.session.scalars(sa.select(User).order_by(User.email)).all()
    return render_template(
        "auth/users.html",
        users=accounts,
        locked=services.locked_accounts(accounts),
        new_user=new_user,
        role_form=RoleForm(),
    )


@bp.post("/users")
@requires(Role.ADMIN)
def create_user() -> Response | tuple[str, int]:
    form = NewUserForm()
    if form.validate():
        try:
            user = services.create_user(form.email.data, form.password.data, Role(form.role.data))
            record("user.created", "user", user.id, f"Created {user.email} as {user.role}")
            db.session.commit()
        except ValidationFailed as error:
            _field_error(form, error)
        else:
            flash(f"Account {user.email} created.", "success")
            return redirect(url_for("auth.users"))
    return _users_page(form), 400


def _user_action(user_id: int, change, action: str, summary: str) -> Response:
    user = db.get_or_404(User, user_id)
    before = {"role": user.role.value, "active": user.active}
    try:
        change(user)
    except ValidationFailed as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("auth.users"))
    after = {"role": user.role.value, "active": user.active}
    record(
        action,
        "user",
        user.id,
        f"{summary} {user.email}",
        {key: [before[key], after[key]] for key in before if before[key] != after[key]},
    )
    db.session.commit()
    flash(f"{summary} {user.email}.", "success")
    return redirect(url_for("auth.users"))


@bp.post("/users/<int:user_id>/role")
@requires(Role.ADMIN)
def set_role(user_id: int) -> Response:
    form = RoleForm()
    if not form.validate():
        flash("Choose a role from the list.", "error")
        return redirect(url_for("auth.users"))
    role = Role(form.role.data)
    return _user_action(
        user_id,
        lambda user: services.set_role(user, role),
        "user.role_changed",
        f"Made {role.value}:",
    )


@bp.post("/users/<int:user_id>/disable")
@requires(Role.ADMIN)
def disable(user_id: int) -> Response:
    return _user_action(user_id, services.disable_user, "user.disabled", "Disabled")


@bp.post("/users/<int:user_id>/enable")
@requires(Role.ADMIN)
def enable(user_id: int) -> Response:
    return _user_action(user_id, services.enable_user, "user.enabled", "Enabled")


@bp.post("/users/<int:user_id>/unlock")
@requires(Role.ADMIN)
def unlock(user_id: int) -> Response:
    return _user_action(user_id, services.unlock, "user.unlocked", "Lifted the login lock of")
