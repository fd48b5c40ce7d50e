"""`flask seed`: the reference data every installation needs; the `flask contacts` group."""

import json
from importlib import resources

import click
import sqlalchemy as sa
from flask.cli import AppGroup, with_appcontext

from jeg_contacts.contacts.models import Topic, TopicGroup
from jeg_contacts.extensions import db

# `flask contacts export` and `flask contacts import` join this group from their own rooms.
contacts_cli = AppGroup("contacts", help="Export and import contact lists.")


def seed_topics() -> int:
    """Insert the JEG interest topics that are missing; existing ones are left as staff set them."""
    raw = resources.files("jeg_contacts").joinpath("data/topics.json").read_text()
    known = set(db.session.scalars(sa.select(Topic.slug)))
    added = 0
    for position, topic in enumerate(json.loads(raw)["topics"], start=1):
        if topic["slug"] in known:
            continue
        db.session.add(
            Topic(
                slug=topic["slug"],
                label_en=topic["en"],
                label_fr=topic["fr"],
                label_ru=topic["ru"],
                group=TopicGroup(topic["group"]),
                position=position * 10,
                active=True,
            )
        )
        added += 1
    return added


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Add the JEG interest topics (safe to run again)."""
    added = seed_topics()
    db.session.commit()
    click.echo(f"Seeded {added} new topic(s).")


def topic_ids_for_option(slugs: tuple[str, ...]) -> list[str]:
    """The ids (as text) of the topics named by repeated --topic SLUG options."""
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
