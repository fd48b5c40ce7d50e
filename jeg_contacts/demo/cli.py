"""`flask demo-data`: fill the database with synthetic stakeholders."""

import time

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from jeg_contacts.audit.services import record
from jeg_contacts.contacts.models import Organisation
from jeg_contacts.demo.services import NoTopics, database_has_contacts, generate_demo_data
from jeg_contacts.extensions import db

# Below this the command is done before a progress bar would be worth reading.
PROGRESS_BAR_FROM = 10_000


@click.command("demo-data")
@click.option(
    "--contacts",
    "contact_count",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="How many contacts to create.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="The same seed gives the same people."
)
@click.option("--if-empty", is_flag=True, help="Do nothing if the database has any contact.")
@with_appcontext
def demo_data_command(contact_count: int, seed: int, if_empty: bool) -> None:
    """Generate synthetic stakeholders: organisations, contacts, topics and consent history."""
    if if_empty and database_has_contacts():
        click.echo("The database already has contacts; no demo data added.")
        return
    started = time.perf_counter()
    organisations_before = _organisation_count()
    try:
        if contact_count >= PROGRESS_BAR_FROM:
            with click.progressbar(length=contact_count, label="Creating demo contacts") as bar:
                created = generate_demo_data(contact_count, seed, progress=bar.update)
        else:
            created = generate_demo_data(contact_count, seed)
    except NoTopics:
        db.session.rollback()
        raise click.ClickException(
            "Every topic is archived; make at least one topic active first."
        ) from None
    new_organisations = _organisation_count() - organisations_before
    record(
        "demo.generated",
        "contact",
        None,
        f"Generated {created:,} demo contacts and {new_organisations:,} organisations "
        f"(seed {seed}, command line)",
    )
    db.session.commit()
    # Fresh planner statistics after a bulk load: without them SQLite picks poor plans for
    # some directory sort orders.
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()
    elapsed = time.perf_counter() - started
    click.echo(
        f"Created {created:,} demo contacts and {new_organisations:,} organisations "
        f"in {elapsed:.1f} s (seed {seed})."
    )


def _organisation_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Organisation)) or 0
