"""`flask doctor`, `flask backup DIR` and `flask restore FILE`."""

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale

from jeg_contacts.errors import ValidationFailed
from jeg_contacts.mailing.previews import checked_test_address
from jeg_contacts.operations import doctor
from jeg_contacts.operations.backup import BackupError, backup
from jeg_contacts.operations.restore import restore


@click.command("doctor")
@click.option(
    "--to",
    "address",
    metavar="ADDRESS",
    help="Also send a real test message to ADDRESS, through the relay (or the outbox).",
)
@with_appcontext
def doctor_command(address: str | None) -> None:
    """Check everything a server needs; exit 1 if anything is a PROBLEM."""
    checks = list(doctor.CHECKS)
    if address:
        try:
            with force_locale("en"):
                address = checked_test_address(address)
        except ValidationFailed as error:
            raise click.BadParameter(str(error.message), param_hint="--to") from None
        checks.append(lambda: doctor.send_test_message(address))
    counts = {level: 0 for level in doctor.Level}
    for finding in doctor.run_checks(checks):
        counts[finding.level] += 1
        click.echo(finding.line())
    problems, warnings = counts[doctor.Level.PROBLEM], counts[doctor.Level.WARNING]
    if problems:
        click.echo(f"{problems} problem(s), {warnings} warning(s): fix the problems above.")
        sys.exit(1)
    click.echo(f"No problem ({warnings} warning(s)).")


@click.command("backup")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(folder: Path) -> None:
    """Write a backup archive (database, secret key, settings; mode 0600) into FOLDER."""
    try:
        path = backup(folder)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backup written to {path} (readable by its owner only: it holds the secret key).")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--settings-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the backup's settings (default: restored-settings.env in the "
    "instance folder). Never overwritten.",
)
@with_appcontext
def restore_command(archive: Path, settings_out: Path | None) -> None:
    """Restore a backup archive into the configured database, which must be empty."""
    settings_out = settings_out or Path(current_app.instance_path) / "restored-settings.env"
    try:
        restored = restore(archive, settings_out)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    rows = ", ".join(f"{count} {name}" for name, count in restored.counts.items() if count)
    click.echo(f"Restored, and checked against the backup: {rows or 'no rows'}.")
    click.echo(
        f"Settings written to {restored.settings_file} (mode 0600). Put them in the service's "
        "environment (SECRET_KEY above all: without it no emailed link works), then run "
        "flask --app wsgi db upgrade and start the app and the worker."
    )
    if restored.secret_key_file:
        click.echo(f"The instance key file {restored.secret_key_file} is the backup's again.")
