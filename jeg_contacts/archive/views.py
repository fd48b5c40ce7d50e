"""The public archive of published announcements, and its Atom feed."""

from flask import Blueprint, Response, abort, render_template
from flask_babel import get_locale

from jeg_contacts.archive import services
from jeg_contacts.extensions import MAX_ID
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.pagination import requested_page

bp = Blueprint("archive", __name__)

MAX_PAGE = 10_000


def _language() -> str:
    language = str(get_locale() or "en")
    return language if language in LANGUAGES else "en"


@bp.context_processor
def _helpers() -> dict[str, object]:
    return {
        "kind_labels": services.KIND_LABELS,
        "sent_on": services.sent_on,
    }


@bp.get("/announcements")
def index() -> str:
    page_number = requested_page(MAX_PAGE)
    page = services.published_page(page_number)
    language = _language()
    return render_template(
        "archive/index.html",
        page=page,
        versions={a.id: services.public_version(a, language) for a in page.items},
    )


@bp.get("/announcements/<int:announcement_id>")
def detail(announcement_id: int) -> str:
    announcement = (
        services.published_announcement(announcement_id) if announcement_id <= MAX_ID else None
    )
    if announcement is None:
        abort(404)
    language = _language()
    return render_template(
        "archive/detail.html",
        announcement=announcement,
        version=services.public_version(announcement, language),
        languages=[code for code in LANGUAGES if announcement.has_language(code)],
    )


@bp.get("/announcements/feed.atom")
def feed() -> Response:
    return Response(
        services.atom_feed(_language()), content_type="application/atom+xml; charset=utf-8"
    )
