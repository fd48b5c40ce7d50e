"""`flask outbox`: read the local Maildir outbox used when no SMTP server is configured."""

from email import message_from_binary_file, policy
from email.message import EmailMessage
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext


def latest_messages(limit: int) -> list[EmailMessage]:
    """The newest messages of the outbox, newest first."""
    outbox = Path(current_app.config["OUTBOX_DIR"])
    # Maildir keeps one file per message in new/ (unread) or cur/ (read).
    files = [path for folder in ("new", "cur") for path in (outbox / folder).glob("*")]
    files.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
    messages = []
    for path in files[:limit]:
        with path.open("rb") as raw:
            messages.append(message_from_binary_file(raw, policy=policy.default))
    return messages


@click.command("outbox")
@with_appcontext
@click.option("--limit", default=10, show_default=True, help="How many messages to list.")
@click.option("--show", type=int, default=None, help="Print the text of message N (1 = newest).")
def outbox_command(limit: int, show: int | None) -> None:
    """List the latest messages written to the local outbox."""
    if current_app.config["SMTP_HOST"]:
        click.echo(
            f"Note: mail is sent to SMTP_HOST={current_app.config['SMTP_HOST']}, not to the outbox."
        )
    messages = latest_messages(max(limit, show or 0))
    if not messages:
        click.echo(f"The outbox is empty ({current_app.config['OUTBOX_DIR']}).")
        return
    if show is not None:
        if not 1 <= show <= len(messages):
            raise click.BadParameter(f"choose 1 to {len(messages)}", param_hint="--show")
        message = messages[show - 1]
        for header in ("Date", "From", "To", "Subject"):
            click.echo(f"{header}: {message[header]}")
        click.echo("")
        click.echo(message.get_body(preferencelist=("plain",)).get_content())
        return
    for number, message in enumerate(messages[:limit], start=1):
        click.echo(f"{number:>3}  {message['Date']}  {message['To']}  {message['Subject']}")
