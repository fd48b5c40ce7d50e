"""Managing interest topics: create, rename, reorder, archive and restore, all audited."""

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jeg_contacts.audit.services import changes_between, record
from jeg_contacts.contacts.models import Contact, ContactStatus, Topic, TopicGroup, subscriptions
from jeg_contacts.contacts.services import clean_line
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_MAX_LENGTH = 80
LABEL_MAX_LENGTH = 200
POSITION_STEP = 10
LANGUAGE_FIELDS = {"label_en": "English", "label_fr": "French", "label_ru": "Russian"}


@dataclass(frozen=True)
class TopicData:
    """Labels and group of a topic, as typed into a form."""

    label_en: str | None
    label_fr: str | None
    label_ru: str | None
    group: str | None


def topics_by_group() -> list[tuple[TopicGroup, list[Topic]]]:
    """Every topic, archived ones included, grouped in display order (empty groups too)."""
    topics = db.session.scalars(sa.select(Topic).order_by(Topic.position, Topic.id))
    groups: dict[TopicGroup, list[Topic]] = {group: [] for group in TopicGroup}
    for topic in topics:
        groups[topic.group].append(topic)
    return list(groups.items())


def subscriber_counts() -> dict[int, int]:
    """{topic id: number of active contacts subscribed}, in one grouped query."""
    rows = db.session.execute(
        sa.select(subscriptions.c.topic_id, sa.func.count())
        .join(Contact, Contact.id == subscriptions.c.contact_id)
        .where(Contact.status == ContactStatus.ACTIVE)
        .group_by(subscriptions.c.topic_id)
    )
    return dict(rows.all())


def _slug_taken(slug: str) -> bool:
    return db.session.scalar(sa.select(Topic.id).where(Topic.slug == slug)) is not None


def _clean_slug(raw: str) -> str:
    """The identifier staff chose under "advanced", checked."""
    slug = raw.strip()
    if len(slug) > SLUG_MAX_LENGTH:
        raise ValidationFailed("slug", f"Use at most {SLUG_MAX_LENGTH} characters.")
    if not SLUG_PATTERN.fullmatch(slug):
        raise ValidationFailed(
            "slug",
            "Use lowercase letters a-z, digits and single hyphens between them, like flood-risk.",
        )
    if _slug_taken(slug):
        raise ValidationFailed("slug", f"A topic with the identifier {slug} already exists.")
    return slug


def slug_from_name(name: str) -> str:
    """An identifier made from a topic's English name: "Sécurité & santé" -> "securite-sante",
    "-2", "-3" … added when taken, "topic" when the name has no Latin letter or digit."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = "-".join(re.findall(r"[a-z0-9]+", ascii_name.lower())) or "topic"
    base = base[: SLUG_MAX_LENGTH - 4].rstrip("-")  # room for a "-999" suffix
    slug, number = base, 1
    while _slug_taken(slug):
        number += 1
        slug = f"{base}-{number}"
    return slug


def _clean_labels(data: TopicData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, language in LANGUAGE_FIELDS.items():
        text = clean_line(field, getattr(data, field), max_length=LABEL_MAX_LENGTH)
        if not text:
            raise ValidationFailed(field, f"Enter the label in {language}.")
        values[field] = text
    if data.group not in TopicGroup._value2member_map_:
        raise ValidationFailed("group", "Choose a group from the list.")
    values["group"] = TopicGroup(data.group)
    return values


def _end_of_list() -> int:
    last = db.session.scalar(sa.select(sa.func.max(Topic.position)))
    return (last or 0) + POSITION_STEP


def snapshot(topic: Topic) -> dict[str, Any]:
    return {
        "slug": topic.slug,
        "label_en": topic.label_en,
        "label_fr": topic.label_fr,
        "label_ru": topic.label_ru,
        "group": topic.group.value,
        "position": topic.position,
        "active": topic.active,
    }


def create_topic(slug: str | None, data: TopicData) -> Topic:
    """A new active topic at the end of its group; without a `slug` (the identifier), one is
    made from its English name."""
    values = _clean_labels(data)
    slug = _clean_slug(slug) if slug and slug.strip() else slug_from_name(values["label_en"])
    topic = Topic(slug=slug, position=_end_of_list(), active=True, **values)
    db.session.add(topic)
    db.session.flush()
    record(
        "topic.created",
        "topic",
        topic.id,
        f"Created topic “{topic.label_en}”",
        changes_between({}, snapshot(topic)),
    )
    return topic


def rename_topic(topic: Topic, data: TopicData) -> dict[str, list]:
    """Change a topic's labels and group (its slug stays); returns what changed."""
    values = _clean_labels(data)
    before = snapshot(topic)
    if values["group"] is not topic.group:
        # A topic moved to another group goes to the end of it.
        topic.position = _end_of_list()
    for field, value in values.items():
        setattr(topic, field, value)
    changes = changes_between(before, snapshot(topic))
    if changes:
        record("topic.renamed", "topic", topic.id, f"Renamed topic “{topic.label_en}”", changes)
        db.session.flush()
    return changes


def move_topic(topic: Topic, direction: str) -> Topic | None:
    """Swap the topic with its neighbour in its group ("up" or "down"); returns the neighbour,
    or None when it is already first or last."""
    if direction not in ("up", "down"):
        raise ValidationFailed("direction", "Move a topic up or down.")
    siblings = list(
        db.session.scalars(
            sa.select(Topic).where(Topic.group == topic.group).order_by(Topic.position, Topic.id)
        )
    )
    index = siblings.index(topic)
    other_index = index - 1 if direction == "up" else index + 1
    if not 0 <= other_index < len(siblings):
        return None
    neighbour = siblings[other_index]
    before = topic.position
    positions = [sibling.position for sibling in siblings]
    if len(set(positions)) != len(positions):
        # Equal positions (rows added by hand) cannot be swapped: number the group afresh.
        start = min(positions)
        for offset, sibling in enumerate(siblings):
            sibling.position = start + offset * POSITION_STEP
    topic.position, neighbour.position = neighbour.position, topic.position
    record(
        "topic.moved",
        "topic",
        topic.id,
        f"Moved topic “{topic.label_en}” {direction}, "
        f"{'above' if direction == 'up' else 'below'} “{neighbour.label_en}”",
        {"position": [before, topic.position]},
    )
    db.session.flush()
    return neighbour


def set_active(topic: Topic, active: bool) -> bool:
    """Archive (False) or restore (True) a topic; False when it was already in that state.

    Subscriptions are kept either way: archiving only hides the topic from sign-up and the
    preferences page."""
    if topic.active is active:
        return False
    topic.active = active
    action = "topic.restored" if active else "topic.archived"
    verb = "Restored" if active else "Archived"
    record(
        action,
        "topic",
        topic.id,
        f"{verb} topic “{topic.label_en}”",
        {"active": [not active, active]},
    )
    db.session.flush()
    return True
