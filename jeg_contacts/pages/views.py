"""Static public pages and the health check."""

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, render_template
from flask import Response as FlaskResponse
from sqlalchemy.exc import SQLAlchemyError

from jeg_contacts.contacts.models import TopicGroup
from jeg_contacts.contacts.services import PRIVACY_NOTICE_VERSION, active_topics
from jeg_contacts.extensions import db

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    topics = active_topics()
    groups = [(group, [t for t in topics if t.group is group]) for group in TopicGroup]
    return render_template("pages/index.html", topic_groups=[g for g in groups if g[1]])


@bp.get("/privacy")
def privacy() -> str:
    return render_template("pages/privacy.html", version=PRIVACY_NOTICE_VERSION)


@bp.get("/healthz")
def healthz() -> tuple[FlaskResponse, int]:
    try:
        db.session.execute(sa.select(1))
    except SQLAlchemyError:
        current_app.logger.exception("health check: database unreachable")
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
