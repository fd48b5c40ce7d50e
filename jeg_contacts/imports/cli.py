"""`flask contacts import`: a contact list from a CSV or XLSX file, as the back office does it."""

import sys
from pathlib import Path
from typing import IO

import click
from flask_babel import force_locale
from sqlalchemy.exc import IntegrityError

from jeg_contacts.auth.services import user_by_email
from jeg_contacts.contacts.cli import contacts_cli, topic_ids_for_option
from jeg_contacts.contacts.models import ContactStatus, StakeholderType
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.imports import limits
from jeg_contacts.imports.mapping import (
    ImportField,
    ImportSettings,
    mapping_problems,
    suggest_mapping,
)
from jeg_contacts.imports.reading import ENCODINGS, Table, UnreadableFile, open_table
from jeg_contacts.imports.services import (
    Actor,
    Importer,
    Outcome,
    RowResult,
    TooManyPending,
    import_basis,
)

TYPES = [member.value for member in StakeholderType]
IMPORT_DELIMITERS = {"auto": "auto", "comma": ",", "semicolon": ";", "tab": "\t", "bar": "|"}


def _apply_maps(table: Table, mapping: list[str], maps: tuple[str, ...]) -> list[str]:
    """The suggested mapping changed by --map COLUMN=FIELD options."""
    fields = {member.value for member in ImportField}
    names = {name.casefold(): index for index, name in enumerate(table.header)}
    for item in maps:
        column, separator, target = item.partition("=")
        column, target = column.strip(), target.strip()
        if not separator:
            raise click.BadParameter(f"{item!r} is not COLUMN=FIELD", param_hint="--map")
        index = names.get(column.casefold())
        if index is None and column.isdigit() and 1 <= int(column) <= len(table.header):
            index = int(column) - 1
        if index is None:
            raise click.BadParameter(
                f"the file has no column {column!r}; its columns are: " + ", ".join(table.header),
                param_hint="--map",
            )
        if target in ("", "-", "ignore"):
            mapping[index] = ""
            continue
        if target not in fields:
            raise click.BadParameter(
                f"{target!r} is not a field; fields are: {', '.join(sorted(fields))}, ignore",
                param_hint="--map",
            )
        mapping = ["" if value == target else value for value in mapping]
        mapping[index] = target
    return mapping


def _row_line(result: RowResult) -> str:
    detail = f"  {result.detail}" if result.detail else ""
    return f"row {result.number:>6}  {result.outcome.value:<9}  {result.email or '-'}{detail}"


def _summary_line(summary, dry_run: bool) -> str:
    counts = summary.counts
    verb = "Would add" if dry_run else "Added"
    line = (
        f"{verb} {counts[Outcome.CREATE]:,}, "
        f"{'would update' if dry_run else 'updated'} {counts[Outcome.UPDATE]:,}, "
        f"unchanged {counts[Outcome.UNCHANGED]:,}, skipped {counts[Outcome.SKIP]:,}, "
        f"rejected {counts[Outcome.REJECT]:,} of {summary.rows:,} rows; "
        f"{summary.new_organisations:,} new organisation(s)."
    )
    if summary.emails_sent or summary.emails_held:
        line += (
            f" Confirmation emails: {summary.emails_sent:,} sent, "
            f"{summary.emails_held:,} held back by the daily limit per address."
        )
    return line


def _check_basis(status: str, basis: str | None) -> None:
    """Refuse a --basis the import cannot use: given without --status active, missing or
    invalid with it."""
    if basis is not None and status != "active":
        raise click.UsageError(
            "--basis says why the people on the list agreed to be contacted, which only an "
            "import with --status active needs; add --status active or leave --basis out."
        )
    try:
        import_basis(ImportSettings(mapping=(), status=ContactStatus(status), basis=basis))
    except ValidationFailed as error:
        if error.field != "basis" or (basis or "").strip():
            raise click.BadParameter(error.message, param_hint="--basis") from None
        raise click.UsageError(
            "--status active needs --basis TEXT: say why the people on this list agreed "
            'to be contacted (for example --basis "they asked for JEG news at the 2025 '
            "workshop\"). It is kept in each new contact's consent log. Without it, "
            "import them as pending: each is emailed a confirmation link."
        ) from None


def _actor(staff_email: str | None) -> Actor:
    """Who the audit log names as the importer: the --by staff account, or the command line."""
    if not staff_email:
        return Actor(None, "the command line")
    user = user_by_email(staff_email)
    if user is None:
        raise click.BadParameter(f"no staff account {staff_email!r}", param_hint="--by")
    return Actor(user, user.email)


@contacts_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--status",
    type=click.Choice(["pending", "active"]),
    default="pending",
    show_default=True,
    help="Status of new contacts: pending ones are emailed a confirmation link and receive "
    "nothing until they confirm; active needs --basis.",
)
@click.option(
    "--basis",
    metavar="TEXT",
    help="With --status active: why the people on the list agreed to be contacted. It is "
    "kept in each new contact's consent log.",
)
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Read COLUMN (its name or number) as FIELD, or 'ignore' it; repeatable. "
    "Columns are otherwise mapped from their names (English, French, Russian).",
)
@click.option(
    "--update-existing",
    is_flag=True,
    help="Update contacts already in the directory (default: skip them).",
)
@click.option("--encoding", type=click.Choice(list(ENCODINGS)), default="auto", show_default=True)
@click.option(
    "--delimiter", type=click.Choice(list(IMPORT_DELIMITERS)), default="auto", show_default=True
)
@click.option("--type", "default_type", type=click.Choice(TYPES), help="Type for rows without.")
@click.option(
    "--language",
    "default_language",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language for rows without one.",
)
@click.option("--topic", "default_topics", multiple=True, help="Topic slug for rows without.")
@click.option("--by", "staff_email", help="Staff account recorded as the importer.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rejected rows, with the reasons, to this CSV file.",
)
@click.option("--quiet", is_flag=True, help="Print only rejected rows and the summary.")
def import_command(
    file, status, basis, dry_run, maps, update_existing, encoding, delimiter, default_type,
    default_language, default_topics, staff_email, report_path, quiet,
) -> None:  # fmt: skip
    """Import contacts from a CSV or XLSX file, printing what happens to each row."""
    with force_locale("en"):
        _check_basis(status, basis)
        try:
            table = open_table(
                file,
                encoding=encoding,
                delimiter=IMPORT_DELIMITERS[delimiter],
                max_rows=limits.max_rows(),
                unpack_limits=limits.unpack_limits(),
            )
        except UnreadableFile as error:
            raise click.ClickException(f"Cannot import {file}: {error.message}") from None
        actor = _actor(staff_email)
        settings = ImportSettings(
            mapping=tuple(_apply_maps(table, suggest_mapping(table.header), maps)),
            status=ContactStatus(status),
            basis=basis or "",
            update_existing=update_existing,
            default_type=default_type or "",
            default_language=default_language,
            default_topic_ids=tuple(int(i) for i in topic_ids_for_option(default_topics)),
        )
        click.echo(f"Reading {file}: {table.description}.", err=True)
        for note in table.notes:
            click.echo(f"Note: {note}", err=True)
        for column, field in zip(table.header, settings.mapping, strict=True):
            target = ImportField(field).label if field else "(not imported)"
            click.echo(f"  {column} -> {target}", err=True)
        problems = mapping_problems(settings, table.header)
        if problems:
            raise click.ClickException(
                " ".join(problems) + " Use --map COLUMN=FIELD, --type or --topic."
            )

        def print_row(result: RowResult) -> None:
            if not quiet or result.outcome is Outcome.REJECT:
                click.echo(_row_line(result))

        summary = _run_import(
            table, settings, file.name, actor, dry_run=dry_run, on_row=print_row,
            report_path=report_path,
        )  # fmt: skip
    click.echo(_summary_line(summary, dry_run))
    if dry_run:
        click.echo("Dry run: nothing was written.")
    if report_path and summary.count(Outcome.REJECT):
        click.echo(f"Rejected rows, with the reasons, are in {report_path}.")


def _run_import(table, settings, file_name, actor, *, dry_run, on_row, report_path):
    report: IO[str] | None = None
    try:
        if report_path is not None:
            report = report_path.open("w", newline="", encoding="utf-8-sig")
        importer = Importer(
            table,
            settings,
            file_name=file_name,
            actor=actor,
            write=not dry_run,
            on_row=on_row,
            report=report,
        )
        summary = importer.run()
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
        return summary
    except (UnreadableFile, TooManyPending, ValidationFailed) as error:
        db.session.rollback()
        raise click.ClickException(f"Nothing was imported: {error.message}") from None
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(
            "Nothing was imported: some of these contacts were added by someone else while "
            "the import ran. Run it again."
        ) from None
    except OSError as error:
        db.session.rollback()
        raise click.ClickException(f"Nothing was imported: {error}") from None
    finally:
        if report is not None:
            report.close()
        sys.stdout.flush()
