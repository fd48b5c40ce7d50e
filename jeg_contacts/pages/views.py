"""Static public pages, the favicon and the health check."""

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, render_template, send_from_directory
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


# Browsers ask for /favicon.ico on every site whatever the page links to; a day's caching
# spares them asking again on every page.
FAVICON_MAX_AGE = 86400


@bp.get("/favicon.ico")
def favicon() -> FlaskResponse:
    response = send_from_directory(
        current_app.static_folder or "",
        "favicon.ico",
        mimetype="image/vnd.microsoft.icon",
        max_age=FAVICON_MAX_AGE,
    )
    response.cache_control.public = True
    return response
