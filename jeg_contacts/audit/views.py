"""The audit log page: filterable, newest first."""

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from jeg_contacts.audit import presentation
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.extensions import db
from jeg_contacts.pagination import requested_page

bp = Blueprint("audit", __name__, url_prefix="/admin")
# Entries are shown on other rooms' pages too (a contact's, an organisation's).
bp.add_app_template_global(presentation.field_label, "audit_field")
bp.add_app_template_global(presentation.value_text, "audit_value")

PER_PAGE = 50


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@bp.get("/audit")
def index() -> str:
    args = request.args
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc())
    if actor := args.get("actor", "").strip():
        query = query.where(AuditEntry.actor.ilike(f"%{actor}%"))
    if action := args.get("action", "").strip():
        query = query.where(AuditEntry.action == action)
    if entity_type := args.get("entity_type", "").strip():
        query = query.where(AuditEntry.entity_type == entity_type)
    entity_id = args.get("entity_id", "").strip()
    if entity_id.isascii() and entity_id.isdigit() and len(entity_id) <= 18:
        query = query.where(AuditEntry.entity_id == int(entity_id))
    if since := _day(args.get("since")):
        query = query.where(AuditEntry.at >= datetime.combine(since, time.min, UTC))
    if until := _day(args.get("until")):
        query = query.where(
            AuditEntry.at < datetime.combine(until + timedelta(days=1), time.min, UTC)
        )
    page = db.paginate(query, page=requested_page(), per_page=PER_PAGE, error_out=False)
    actions = db.session.scalars(
        sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)
    )
    entity_types = db.session.scalars(
        sa.select(AuditEntry.entity_type).distinct().order_by(AuditEntry.entity_type)
    )
    return render_template(
        "audit/index.html", page=page, actions=list(actions), entity_types=list(entity_types)
    )
