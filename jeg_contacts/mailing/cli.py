"""`flask announcements ...`: scripting and following announcements (`flask worker`, which
sends them, is in jeg_contacts/worker.py)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from jeg_contacts.audit.services import COMMAND_LINE, Actor
from jeg_contacts.auth.models import Role
from jeg_contacts.auth.services import user_by_email
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.mailing import drafts, services, tracking
from jeg_contacts.mailing.models import Announcement, AnnouncementKind, SavedAudience

announcements_cli = AppGroup("announcements", help="Create, send and follow announcements.")


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"Cannot read {path}: {error}") from None


def _announcement(announcement_id: int) -> Announcement:
    announcement = db.session.get(Announcement, announcement_id)
    if announcement is None:
        raise click.ClickException(f"There is no announcement {announcement_id}.")
    return announcement


def _actor(email: str | None) -> Actor:
    """Who the audit log names: the staff account given with --by, else the command line.
    The account must be one that could do the same on the pages (an active editor)."""
    if email is None:
        return COMMAND_LINE
    user = user_by_email(email)
    if user is None:
        raise click.BadParameter(f"there is no staff account {email!r}.", param_hint="--by")
    if not user.active:
        raise click.BadParameter(f"the staff account {user.email} is disabled.", param_hint="--by")
    if not user.has_role(Role.EDITOR):
        raise click.BadParameter(
            f"{user.email} is a {user.role.value}; announcements need the editor role.",
            param_hint="--by",
        )
    return Actor.staff(user)


by_option = click.option(
    "--by",
    "by_email",
    metavar="EMAIL",
    help="Staff account recorded as acting in the audit log (default: the command line).",
)


def _commit_or_fail(action) -> object:
    try:
        result = action()
    except ValidationFailed as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()
    return result


@announcements_cli.command("create")
@click.option("--subject", required=True, help="English subject.")
@click.option("--body", "body_path", required=True, type=click.Path(), help="English Markdown.")
@click.option("--kind", type=click.Choice([k.value for k in AnnouncementKind]), default="general")
@click.option("--subject-fr")
@click.option("--body-fr", "body_fr_path", type=click.Path())
@click.option("--subject-ru")
@click.option("--body-ru", "body_ru_path", type=click.Path())
@click.option("--topic", "topics", multiple=True, help="Topic slug (any of).")
@click.option("--stakeholder-type", "stakeholder_types", multiple=True)
@click.option("--country", "countries", multiple=True, help="ISO 3166-1 alpha-2 code.")
@click.option("--language", "languages", multiple=True)
@click.option("--audience", "audience_name", help="Name of a saved audience.")
@by_option
def create(
    subject, body_path, kind, subject_fr, body_fr_path, subject_ru, body_ru_path,
    topics, stakeholder_types, countries, languages, audience_name, by_email,
) -> None:  # fmt: skip
    """Create a draft announcement and print its id."""
    from jeg_contacts.contacts.models import Topic

    by = _actor(by_email)
    saved_id = None
    if audience_name:
        saved_id = db.session.scalar(
            sa.select(SavedAudience.id).where(SavedAudience.name == audience_name)
        )
        if saved_id is None:
            raise click.ClickException(f"There is no saved audience named {audience_name!r}.")
    topic_ids = []
    for slug in topics:
        topic_id = db.session.scalar(sa.select(Topic.id).where(Topic.slug == slug))
        if topic_id is None:
            raise click.ClickException(f"There is no topic {slug!r}.")
        topic_ids.append(str(topic_id))
    criteria = {
        "topic": topic_ids,
        "type": list(stakeholder_types),
        "country": [code.upper() for code in countries],
        "language": list(languages),
    }
    draft = drafts.AnnouncementDraft(
        subject_en=subject,
        body_en=_read(body_path) or "",
        kind=kind,
        subject_fr=subject_fr,
        body_fr=_read(body_fr_path),
        subject_ru=subject_ru,
        body_ru=_read(body_ru_path),
        criteria={key: value for key, value in criteria.items() if value},
        saved_audience_id=saved_id,
    )
    announcement = _commit_or_fail(lambda: drafts.save_draft(draft, by=by))
    click.echo(announcement.id)


@announcements_cli.command("send")
@click.argument("announcement_id", type=int)
@click.option("--at", "at", help="Schedule for this ISO-8601 time (UTC unless it has an offset).")
@by_option
def send(announcement_id: int, at: str | None, by_email: str | None) -> None:
    """Snapshot the recipients and queue them (or schedule the send)."""
    by = _actor(by_email)
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(
                "use ISO-8601, e.g. 2026-12-01T09:00", param_hint="--at"
            ) from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    announcement = _announcement(announcement_id)
    count = _commit_or_fail(lambda: services.start_sending(announcement, when, by=by))
    state = (
        f"scheduled for {when.isoformat()}"
        if when and announcement.status.value == "scheduled"
        else "queued"
    )
    click.echo(f"Announcement {announcement_id}: {count} recipient(s) {state}.")


def _state_command(name: str, action, done: str, help_text: str) -> None:
    """A command applying one state change; `done` may use {count} (what it returns)."""

    @announcements_cli.command(name, help=help_text)
    @click.argument("announcement_id", type=int)
    @by_option
    def command(announcement_id: int, by_email: str | None) -> None:
        by = _actor(by_email)
        announcement = _announcement(announcement_id)
        result = _commit_or_fail(lambda: action(announcement, by=by))
        count = result if isinstance(result, int) else 0
        click.echo(f"Announcement {announcement_id} {done.format(count=count)}.")


_state_command("pause", services.pause, "paused", "Pause an announcement.")
_state_command("resume", services.resume, "resumed", "Resume an announcement.")
_state_command(
    "cancel",
    services.cancel,
    "cancelled ({count} unsent message(s) skipped)",
    "Cancel an announcement (a draft is discarded).",
)
_state_command(
    "retry",
    services.retry_failed,
    "retried: {count} failed delivery(ies) queued again",
    "Queue an announcement's failed deliveries again.",
)


@announcements_cli.command("list")
def list_announcements() -> None:
    """List announcements, newest first."""
    rows = db.session.scalars(sa.select(Announcement).order_by(Announcement.id.desc())).all()
    if not rows:
        click.echo("No announcements yet.")
    for announcement in rows:
        counts = tracking.status_counts(announcement.id)
        click.echo(
            f"{announcement.id:>5}  {announcement.status.value:<9}  "
            f"{counts['sent']:>7}/{counts['total']:<7}  {announcement.subject_en}"
        )


@announcements_cli.command("status")
@click.argument("announcement_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of counts.")
def status(announcement_id: int, as_json: bool) -> None:
    """Counts of deliveries by status."""
    announcement = _announcement(announcement_id)
    counts = tracking.status_counts(announcement.id)
    if as_json:
        click.echo(json.dumps(counts))
        return
    click.echo(f"Announcement {announcement.id} ({announcement.status.value})")
    for key, value in counts.items():
        click.echo(f"  {key:<8} {value}")
