"""Recording audit entries; callers flush them with the change they describe."""

from collections.abc import Mapping
from typing import Any

from flask_login import current_user

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.auth.models import User
from jeg_contacts.extensions import db


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for every field whose value differs."""
    return {
        field: [before.get(field), after.get(field)]
        for field in sorted(set(before) | set(after))
        if before.get(field) != after.get(field)
    }


def record(
    action: str,
    entity_type: str,
    entity_id: int | None,
    summary: str,
    changes: Mapping[str, Any] | None = None,
    user: User | None = None,
) -> AuditEntry:
    """Add an audit entry for the current staff member (or `user`) to the session."""
    if user is None and current_user and current_user.is_authenticated:
        user = current_user._get_current_object()
    entry = AuditEntry(
        user=user,
        actor=user.email if user is not None else "system",
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary[:500],
        changes=dict(changes) if changes else None,
    )
    db.session.add(entry)
    return entry
