"""Recording audit entries (callers flush them with the change they describe), and blanking
a person's data in them when the person is erased."""

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_login import current_user

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.auth.models import User
from jeg_contacts.extensions import db
from jeg_contacts.text import search_key


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for every field whose value differs."""
    return {
        field: [before.get(field), after.get(field)]
        for field in sorted(set(before) | set(after))
        if before.get(field) != after.get(field)
    }


@dataclass(frozen=True)
class Actor:
    """Who an audit entry names: a staff account, or a label such as "command line"."""

    user: User | None
    label: str

    @classmethod
    def staff(cls, user: User) -> "Actor":
        return cls(user, user.email)


COMMAND_LINE = Actor(None, "command line")


def record(
    action: str,
    entity_type: str,
    entity_id: int | None,
    summary: str,
    changes: Mapping[str, Any] | None = None,
    user: User | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Add an audit entry for `actor` (or `user`, or the current staff member) to the
    session."""
    if actor is None:
        if user is None and current_user and current_user.is_authenticated:
            user = current_user._get_current_object()
        actor = Actor.staff(user) if user is not None else Actor(None, "system")
    entry = AuditEntry(
        user=actor.user, **entry_values(actor, action, entity_type, entity_id, summary, changes)
    )
    db.session.add(entry)
    return entry


def entry_values(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: int | None,
    summary: str,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit entry's own values, but its user (an import inserts them in bulk with the
    user's id, record adds them one at a time)."""
    return {
        "actor": actor.label[:254],
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "summary": summary[:500],
        "changes": dict(changes) if changes else None,
    }


# What erasure leaves in place of a person's data, in changes and summaries alike.
ERASED = "(erased)"
_ERASED_RUN = re.compile(r"\(erased\)(?:\s+\(erased\))+")


def _strings(value: Any) -> Iterator[str]:
    """Every non-empty string inside a JSON value."""
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _blanked(value: Any) -> Any:
    """The value with every non-empty leaf replaced by ERASED, keeping its shape, so
    `[None, "Ana"]` still reads as "was empty, then set"."""
    if isinstance(value, list | tuple):
        return [_blanked(item) for item in value]
    if isinstance(value, dict):
        return {key: _blanked(item) for key, item in value.items()}
    return value if value is None or value == "" else ERASED


def _replacing(texts: Iterable[str]) -> Callable[[Any], Any]:
    """A function that replaces each of `texts` (as whole words, in any case) by ERASED in a
    string or in every string inside a JSON value."""
    words = sorted({text.strip() for text in texts if text.strip()}, key=len, reverse=True)
    if not words:
        return lambda value: value
    # Whole words only, longest first: a one-letter name must not eat letters of other words.
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.IGNORECASE
    )

    def replace(value: Any) -> Any:
        if isinstance(value, str):
            # "Ana Silva" becomes one marker, not two.
            return _ERASED_RUN.sub(ERASED, pattern.sub(ERASED, value))
        if isinstance(value, list | tuple):
            return [replace(item) for item in value]
        if isinstance(value, dict):
            return {key: replace(item) for key, item in value.items()}
        return value

    return replace


def erase_person(
    entity_type: str,
    entity_id: int,
    *,
    quoted: Mapping[str, str | None],
    kept: Collection[str],
) -> dict[str, set[str]]:
    """Blank a person's data in every entry about their record, keeping what was done, when,
    by whom and to which fields; returns each `quoted` field's values found, current and past.

    `quoted` maps the fields whose values summaries may quote (names, address, ...) to their
    current values; in `changes`, every field not in `kept` is blanked, whatever its name."""
    entries = list(
        db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.entity_type == entity_type, AuditEntry.entity_id == entity_id
            )
        )
    )
    found = {field: set(_strings(value)) for field, value in quoted.items()}
    for entry in entries:
        for field, change in (entry.changes or {}).items():
            if field in found:
                found[field].update(_strings(change))
    replace = _replacing(text for texts in found.values() for text in texts)
    for entry in entries:
        entry.summary = replace(entry.summary)[:500]
        if entry.changes:
            # A new dict, not changed in place: the JSON column only sees reassignment.
            entry.changes = {
                field: change if field in kept else _blanked(change)
                for field, change in entry.changes.items()
            }
    return found


def erase_address(address: str, entity_type: str) -> None:
    """Replace an email address where the log quotes it outside the entries about single
    records of `entity_type`: in the filter of an export or bulk action, in a test send.

    Those entries are erase_person's: by now the address may be another record's. Staff
    accounts' entries are left alone too: they are about the account."""
    needle = address.casefold()
    replace = _replacing([address])
    entries = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.entity_type != "user",
            sa.or_(AuditEntry.entity_type != entity_type, AuditEntry.entity_id.is_(None)),
            sa.or_(
                sa.func.lower(AuditEntry.summary).contains(needle, autoescape=True),
                sa.func.lower(sa.cast(AuditEntry.changes, sa.Text)).contains(
                    needle, autoescape=True
                ),
            ),
        )
    )
    for entry in entries:
        entry.summary = replace(entry.summary)[:500]
        if entry.changes:
            entry.changes = replace(entry.changes)


def _folded(text: str) -> tuple[str, list[int]]:
    """`text` folded as the directory's search folds it (search_key: case and accents
    dropped), character by character, with the index in `text` each folded one comes from."""
    folded, origins = [], []
    for index, character in enumerate(text):
        piece = " " if character.isspace() else search_key(character)
        folded.append(piece)
        origins.extend([index] * len(piece))
    return "".join(folded), origins


def _replacing_folded(texts: Iterable[str]) -> Callable[[str], str]:
    """A function that replaces each of `texts` by ERASED in a string, as whole words and as
    the directory's search would find them: "zenobie" and "ZÉNOBIE" for "Zénobie"."""
    keys = sorted({search_key(text) for text in texts} - {""}, key=len, reverse=True)
    if not keys:
        return lambda value: value
    pattern = re.compile(
        r"(?<!\w)(?:"
        + "|".join(r"\s+".join(map(re.escape, key.split())) for key in keys)
        + r")(?!\w)"
    )

    def replace(value: str) -> str:
        folded, origins = _folded(value)
        pieces, last = [], 0
        for match in pattern.finditer(folded):
            start = origins[match.start()]
            # Up to the next folded character: accents written apart go with their letter.
            end = origins[match.end()] if match.end() < len(origins) else len(value)
            pieces += [value[last:start], ERASED]
            last = end
        if not pieces:
            return value
        return _ERASED_RUN.sub(ERASED, "".join([*pieces, value[last:]]))

    return replace


# A directory search as describe_filter() words it: search “ana silva”.
_SEARCH_WORDS = re.compile(r"(search “)(.*?)(”)")


def _in_searches(value: Any, replace: Callable[[str], str], key: str | None = None) -> Any:
    """`value` with `replace` applied to the directory searches it records: the "q" of a
    filter's arguments, and what a filter's description quotes after "search"."""
    if isinstance(value, str):
        if key == "q":
            return replace(value)
        return _SEARCH_WORDS.sub(lambda match: match[1] + replace(match[2]) + match[3], value)
    if isinstance(value, list | tuple):
        return [_in_searches(item, replace, key) for item in value]
    if isinstance(value, dict):
        return {name: _in_searches(item, replace, name) for name, item in value.items()}
    return value


def erase_searched_names(names: Iterable[str], entity_type: str) -> None:
    """Replace a person's names where the log keeps what staff typed into directory searches
    (the filter of an export or a bulk action), outside the entries about single records of
    `entity_type`: names are matched as the search matched them, in any case and with or
    without accents, as whole words.

    Only the searches: a name that is also a word ("Rose", "Water") stays in the names of
    topics and organisations. Staff accounts' entries are left alone, as in erase_address."""
    replace = _replacing_folded(names)
    entries = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.entity_type != "user",
            sa.or_(AuditEntry.entity_type != entity_type, AuditEntry.entity_id.is_(None)),
        )
    ).all()
    for entry in entries:
        summary = _in_searches(entry.summary, replace)[:500]
        if summary != entry.summary:
            entry.summary = summary
        if entry.changes:
            changes = _in_searches(entry.changes, replace)
            if changes != entry.changes:
                entry.changes = changes
