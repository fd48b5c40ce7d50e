"""`flask contacts export|import`: contact lists from and to files, for scripts and big files."""

import os
import sys
import tempfile
from pathlib import Path
from typing import IO

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from jeg_contacts.audiences.services import ContactFilter
from jeg_contacts.auth.services import user_by_email
from jeg_contacts.contacts.models import ContactStatus, StakeholderType, Topic
from jeg_contacts.countries import iso_codes
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.exports import limits, services
from jeg_contacts.exports.imports import (
    Actor,
    Importer,
    Outcome,
    RowResult,
    TooManyPending,
    import_basis,
)
from jeg_contacts.exports.mapping import (
    ImportField,
    ImportSettings,
    mapping_problems,
    suggest_mapping,
)
from jeg_contacts.exports.reading import ENCODINGS, Table, UnreadableFile, open_table
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES

contacts_cli = AppGroup("contacts", help="Export and import contact lists.")

EXPORT_STATUSES = [status.value for status in ContactStatus if status is not ContactStatus.ERASED]
TYPES = [member.value for member in StakeholderType]
IMPORT_DELIMITERS = {"auto": "auto", "comma": ",", "semicolon": ";", "tab": "\t", "bar": "|"}


# --- export -------------------------------------------------------------------------------


def _topic_ids(slugs: tuple[str, ...]) -> list[str]:
    ids = []
    for slug in slugs:
        topic_id = db.session.scalar(sa.select(Topic.id).where(Topic.slug == slug))
        if topic_id is None:
            known = ", ".join(db.session.scalars(sa.select(Topic.slug).order_by(Topic.slug)))
            raise click.BadParameter(
                f"there is no topic {slug!r}; topics are: {known}", param_hint="--topic"
            )
        ids.append(str(topic_id))
    return ids


def _countries(codes: tuple[str, ...]) -> list[str]:
    upper = [code.upper() for code in codes]
    unknown = [code for code in upper if code not in iso_codes()]
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, KZ)",
            param_hint="--country",
        )
    return upper


@contacts_cli.command("export")
@click.option(
    "--format",
    "format_key",
    type=click.Choice(list(services.FORMATS)),
    default="csv",
    show_default=True,
    help="csv, excel-csv (UTF-8 with BOM), xlsx, vcf (vCard 4.0) or jsonl.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (standard output by default).",
)
@click.option("--topic", "topics", multiple=True, help="Topic slug; repeat for any of several.")
@click.option("--stakeholder-type", "types", multiple=True, type=click.Choice(TYPES))
@click.option("--country", "countries", multiple=True, help="ISO 3166-1 alpha-2 code.")
@click.option("--language", "languages", multiple=True, type=click.Choice(LANGUAGES))
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(EXPORT_STATUSES),
    help="Default: every status (erased contacts are never exported).",
)
@click.option("--query", "-q", default="", help="Words in the name, email or organisation.")
@click.option(
    "--columns",
    help=f"Comma-separated columns, from: {', '.join(services.COLUMNS)}. "
    f"Default: {', '.join(services.DEFAULT_COLUMNS)}.",
)
@click.option(
    "--delimiter",
    type=click.Choice(list(services.DELIMITER_ARGS)),
    default="comma",
    show_default=True,
    help="For the CSV formats.",
)
@click.option("--sort", default="name", show_default=True, help="As in the directory.")
def export_command(
    format_key, output, topics, types, countries, languages, statuses, query, columns,
    delimiter, sort,
) -> None:  # fmt: skip
    """Export contacts, filtered as in the directory; every export is audited."""
    arguments = MultiDict(
        [("topic", topic_id) for topic_id in _topic_ids(topics)]
        + [("type", value) for value in types]
        + [("country", code) for code in _countries(countries)]
        + [("language", value) for value in languages]
        + [("status", value) for value in statuses]
        + ([("q", query)] if query else [])
    )
    stdout = sys.stdout.buffer
    if format_key == "xlsx" and output is None and stdout.isatty():
        raise click.UsageError("XLSX is a binary format: give --output FILE or redirect it.")
    with force_locale("en"):
        try:
            export = services.parse_export(
                ContactFilter.from_args(arguments),
                format_key=format_key,
                columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else (),
                delimiter=delimiter,
                sort=sort,
            )
        except ValidationFailed as error:
            raise click.BadParameter(error.message, param_hint=f"--{error.field}") from None
        count = services.start_export(export, "command line")
        db.session.commit()
        if output is None:
            services.write_export(export, stdout)
            stdout.flush()
        else:
            _write_atomically(output, export)
    where = f" to {output}" if output else ""
    click.echo(f"Exported {count:,} contact(s) as {export.format.label}{where}.", err=True)


def _write_atomically(output: Path, export: services.Export) -> None:
    """Write next to `output`, then rename: a failed export leaves no half-written file."""
    folder = output.resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {folder} does not exist", param_hint="--output")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            services.write_export(export, file)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- import -------------------------------------------------------------------------------


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
    if basis is not None and status != "active":
        raise click.UsageError(
            "--basis says why the people on the list agreed to be contacted, which only an "
            "import with --status active needs; add --status active or leave --basis out."
        )
    with force_locale("en"):
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
        actor = Actor(None, "the command line")
        if staff_email:
            user = user_by_email(staff_email)
            if user is None:
                raise click.BadParameter(f"no staff account {staff_email!r}", param_hint="--by")
            actor = Actor(user, user.email)
        settings = ImportSettings(
            mapping=tuple(_apply_maps(table, suggest_mapping(table.header), maps)),
            status=ContactStatus(status),
            basis=basis or "",
            update_existing=update_existing,
            default_type=default_type or "",
            default_language=default_language,
            default_topic_ids=tuple(int(i) for i in _topic_ids(default_topics)),
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
