"""`flask contacts export`: contact lists to files, for scripts and big lists."""

import os
import sys
import tempfile
from pathlib import Path

import click
from flask_babel import force_locale
from werkzeug.datastructures import MultiDict

from jeg_contacts.audiences.services import ContactFilter
from jeg_contacts.contacts.cli import contacts_cli, topic_ids_for_option
from jeg_contacts.contacts.models import ContactStatus, StakeholderType
from jeg_contacts.countries import iso_codes
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.exports import services, writers
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES

EXPORT_STATUSES = [status.value for status in ContactStatus if status is not ContactStatus.ERASED]
TYPES = [member.value for member in StakeholderType]


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
        [("topic", topic_id) for topic_id in topic_ids_for_option(topics)]
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
            writers.write_export(export, stdout)
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
            writers.write_export(export, file)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
