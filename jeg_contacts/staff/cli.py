"""`flask users ...`: manage staff accounts from the shell."""

import sys

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from jeg_contacts.audit.services import record
from jeg_contacts.auth import services
from jeg_contacts.auth.models import Role, User
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db

users_cli = AppGroup("users", help="Manage secretariat staff accounts.")

ROLE = click.Choice([role.value for role in Role])


def _existing(email: str) -> User:
    user = services.user_by_email(email)
    if user is None:
        raise click.ClickException(f"No staff account with the email {email}.")
    return user


def _apply(change) -> None:
    try:
        change()
    except ValidationFailed as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=ROLE, default=Role.VIEWER.value, show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create(email: str, role: str, password_stdin: bool) -> None:
    """Create a staff account (the password is prompted for unless --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    def create_account() -> None:
        user = services.create_user(email, password, Role(role))
        record("user.created", "user", user.id, f"Created {user.email} as {role} (command line)")

    _apply(create_account)
    click.echo(f"Created {email.strip().casefold()} with role {role}.")


@users_cli.command("list")
def list_users() -> None:
    """List staff accounts."""
    accounts = db.session.scalars(sa.select(User).order_by(User.email)).all()
    if not accounts:
        click.echo("No staff accounts yet. Create one with: flask --app wsgi users create EMAIL")
        return
    for user in accounts:
        state = "active" if user.active else "disabled"
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
        click.echo(f"{user.email:<40} {user.role.value:<7} {state:<9} last login {last}")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLE)
def set_role(email: str, role: str) -> None:
    """Change a staff member's role."""
    user = _existing(email)
    before = user.role.value

    def change() -> None:
        services.set_role(user, Role(role))
        record(
            "user.role_changed",
            "user",
            user.id,
            f"Role of {user.email} set to {role}",
            {"role": [before, role]},
        )

    _apply(change)
    click.echo(f"{user.email} is now {role}.")


@users_cli.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable a staff account and sign it out everywhere."""
    user = _existing(email)

    def change() -> None:
        services.disable_user(user)
        record("user.disabled", "user", user.id, f"Disabled {user.email} (command line)")

    _apply(change)
    click.echo(f"{user.email} is disabled.")


@users_cli.command("unlock")
@click.argument("email")
def unlock(email: str) -> None:
    """Lift the lock that failed logins put on a staff account's email."""
    user = _existing(email)

    def change() -> None:
        services.unlock(user)
        record("user.unlocked", "user", user.id, f"Lifted the login lock of {user.email}")

    _apply(change)
    click.echo(f"Logins for {user.email} are unlocked.")


@users_cli.command("bootstrap-admin")
def bootstrap_admin() -> None:
    """Create a first administrator with a random password if there is no account at all."""
    account = services.bootstrap_admin()
    db.session.commit()
    if account is None:
        return
    click.echo("")
    click.echo("  A first administrator account was created for you:")
    click.echo(f"    email:    {account.email}")
    click.echo(f"    password: {account.password}")
    click.echo("  Log in at /admin/login and change the password under 'Account'.")
    click.echo("")
