"""Back office: the announcements list and one announcement's page; importing this module
registers every announcement page (compose_views and sending_views add theirs to `bp`)."""

import smtplib

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from jeg_contacts.audiences.services import (
    audience_size,
)
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.mailing import compose_views, previews, sending_views, services, tracking
from jeg_contacts.mailing.blueprint import (
    MAX_SEARCH_LENGTH,
    actor,
    announcement_or_404,
    bp,
    describe,
    member,
    progress_data,
    show_error,
)
from jeg_contacts.mailing.forms import (
    LANGUAGE_LABELS,
    ConfirmForm,
    PublishForm,
    SendTestForm,
)
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    DeliveryStatus,
)
from jeg_contacts.pagination import requested_page

# --- The list -----------------------------------------------------------------------------


@bp.get("/announcements")
def index() -> str:
    status = member(AnnouncementStatus, request.args.get("status"))
    page = tracking.announcement_page(requested_page(), status)
    return render_template(
        "mailing/index.html",
        page=page,
        status=status,
        counts=tracking.counts_for([announcement.id for announcement in page.items]),
    )


# --- One announcement ---------------------------------------------------------------------


def _delivery_status(raw: str | None) -> DeliveryStatus | None:
    return member(DeliveryStatus, raw)


def _render_detail(
    announcement: Announcement, status: int = 200, test_form: SendTestForm | None = None
) -> tuple[str, int]:
    progress = tracking.progress(announcement)
    q = " ".join(request.args.get("q", "").split())[:MAX_SEARCH_LENGTH]
    delivery_status = _delivery_status(request.args.get("status"))
    log = None
    if progress.total:
        log = tracking.delivery_log(announcement.id, q, delivery_status, requested_page())
    criteria = services.effective_criteria(announcement)
    if test_form is None:
        test_form = SendTestForm(data={"email": current_user.email, "language": "en"})
    page = render_template(
        "mailing/detail.html",
        announcement=announcement,
        progress=progress,
        progress_data=progress_data(announcement, progress),
        log=log,
        q=q,
        delivery_status=delivery_status,
        previews=[
            previews.preview(announcement, language)
            for language in LANGUAGES
            if announcement.has_language(language)
        ],
        audience_description=describe(criteria),
        recipient_count=(
            audience_size(criteria) if announcement.status is AnnouncementStatus.DRAFT else None
        ),
        test_form=test_form,
        action_form=ConfirmForm(),
        publish_form=PublishForm(),
        smtp_configured=bool(current_app.config["SMTP_HOST"]),
    )
    return page, status


@bp.get("/announcements/<int:announcement_id>")
def detail(announcement_id: int) -> tuple[str, int]:
    return _render_detail(announcement_or_404(announcement_id))


@bp.get("/announcements/<int:announcement_id>/status.json")
def status(announcement_id: int) -> Response:
    """Progress of the send, polled by the announcement page while it is under way."""
    announcement = announcement_or_404(announcement_id)
    response = jsonify(progress_data(announcement, tracking.progress(announcement)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/announcements/<int:announcement_id>/test")
@requires(Role.EDITOR)
def send_test(announcement_id: int) -> Response | tuple[str, int]:
    announcement = announcement_or_404(announcement_id)
    form = SendTestForm()
    if not form.validate():
        return _render_detail(announcement, 400, form)
    language = form.language.data
    try:
        address = previews.record_test(announcement, language, form.email.data, by=actor())
    except ValidationFailed as error:
        show_error(form, error)
        return _render_detail(announcement, 400, form)
    db.session.commit()
    try:
        sent = previews.send_test(announcement, language, address)
    except (smtplib.SMTPException, OSError) as error:
        current_app.logger.exception("test message to %s failed", address)
        flash(f"The test could not be sent to {address}: {error}", "error")
    else:
        note = ""
        if sent.fallback:
            note = (
                f" There is no {LANGUAGE_LABELS[language]} version, so it is the English one, "
                "as contacts reading that language would get."
            )
        where = (
            ""
            if current_app.config["SMTP_HOST"]
            else " No SMTP server is configured, so it is in the outbox: read it with "
            "“flask --app wsgi outbox --show 1”."
        )
        flash(f"Test sent to {address}, subject “{sent.subject}”.{note}{where}", "success")
    return redirect(url_for(".detail", announcement_id=announcement.id, _anchor="test"))


__all__ = ["bp", "compose_views", "sending_views"]
