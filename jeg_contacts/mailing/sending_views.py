"""Back office: sending an announcement and changing its state (pause, resume, retry,
cancel, publish, copy)."""

from datetime import timedelta

from flask import (
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.exc import IntegrityError

from jeg_contacts.audiences.services import (
    audience_languages,
    audience_size,
)
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import drafts, services, tracking
from jeg_contacts.mailing.blueprint import (
    actor,
    announcement_or_404,
    bp,
    describe,
    show_error,
)
from jeg_contacts.mailing.forms import (
    ConfirmForm,
    PublishForm,
    SendForm,
)
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
)

# --- Sending and its state changes ----------------------------------------------------------


def _render_send(announcement: Announcement, form: SendForm, status: int = 200) -> tuple[str, int]:
    criteria = services.effective_criteria(announcement)
    count = audience_size(criteria)
    if form.confirmed_count.data is None:
        form.confirmed_count.data = count
    now = utcnow()
    page = render_template(
        "mailing/send.html",
        announcement=announcement,
        form=form,
        count=count,
        languages=audience_languages(criteria),
        audience_description=describe(criteria),
        now=now,
        earliest=(now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    return page, status


@bp.route("/announcements/<int:announcement_id>/send", methods=["GET", "POST"])
@requires(Role.EDITOR)
def send(announcement_id: int) -> Response | tuple[str, int]:
    """Confirm the recipients, then queue them now or schedule the send."""
    announcement = announcement_or_404(announcement_id)
    if announcement.status is not AnnouncementStatus.DRAFT:
        flash(f"This announcement is already {announcement.status.value}.", "error")
        return redirect(url_for(".detail", announcement_id=announcement.id))
    if request.method == "GET":
        return _render_send(announcement, SendForm(formdata=None))
    form = SendForm()
    if not form.validate():
        return _render_send(announcement, form, 400)
    at = None
    if form.when.data == "later":
        at = form.send_at.data
        if at is None:
            form.send_at.errors = ["Choose the date and time to send at (UTC)."]
            return _render_send(announcement, form, 400)
    try:
        queued = services.start_sending(announcement, at, by=actor())
        db.session.commit()
    except ValidationFailed as error:
        if error.field not in ("send_at", "audience"):
            db.session.rollback()
            flash(f"Nothing was sent: {error.message}", "error")
            return redirect(url_for(".detail", announcement_id=announcement_id))
        show_error(form, error, {"audience": ""})
        return _render_send(announcement, form, 400)
    except IntegrityError:
        db.session.rollback()
        flash("Nothing was sent: it was queued meanwhile.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    scheduled = at is not None
    moved = ""
    if form.confirmed_count.data is not None and form.confirmed_count.data != queued:
        moved = (
            f" That is {abs(queued - form.confirmed_count.data):,} "
            f"{'more' if queued > form.confirmed_count.data else 'fewer'} than you confirmed: "
            "contacts changed meanwhile."
        )
    if scheduled:
        flash(f"Scheduled for {at:%Y-%m-%d %H:%M} UTC: {queued:,} recipient(s).{moved}", "success")
    else:
        flash(f"Sending to {queued:,} recipient(s).{moved}", "success")
    return redirect(url_for(".detail", announcement_id=announcement_id))


def _change(announcement_id: int, change, done: str) -> Response:
    """Apply one state change (a service that audits it) from the announcement page; a
    refusal is flashed. `done` may use {count}: what the change returns (rows it touched)."""
    announcement = announcement_or_404(announcement_id)
    if not ConfirmForm().validate():
        flash("The form expired; nothing was changed. Try again.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    try:
        result = change(announcement, by=actor())
        count = result if isinstance(result, int) else 0
        db.session.commit()
    except ValidationFailed as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        flash(done.format(count=count), "success")
    return redirect(url_for(".detail", announcement_id=announcement_id))


@bp.post("/announcements/<int:announcement_id>/pause")
@requires(Role.EDITOR)
def pause(announcement_id: int) -> Response:
    return _change(
        announcement_id,
        services.pause,
        "Paused. Messages already handed to the mail server still arrive; nothing else is "
        "sent until you resume.",
    )


@bp.post("/announcements/<int:announcement_id>/resume")
@requires(Role.EDITOR)
def resume(announcement_id: int) -> Response:
    return _change(announcement_id, services.resume, "Resumed.")


@bp.post("/announcements/<int:announcement_id>/retry")
@requires(Role.EDITOR)
def retry(announcement_id: int) -> Response:
    return _change(
        announcement_id,
        services.retry_failed,
        "Queued {count:,} failed delivery(ies) again.",
    )


@bp.route("/announcements/<int:announcement_id>/cancel", methods=["GET", "POST"])
@requires(Role.EDITOR)
def cancel(announcement_id: int) -> Response | str:
    announcement = announcement_or_404(announcement_id)
    if announcement.status in (AnnouncementStatus.SENT, AnnouncementStatus.CANCELLED):
        flash(f"This announcement is already {announcement.status.value}.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    if request.method == "GET":
        return render_template(
            "mailing/cancel.html",
            announcement=announcement,
            counts=tracking.status_counts(announcement.id),
            form=ConfirmForm(),
        )
    if announcement.status is AnnouncementStatus.DRAFT:
        return _change(announcement_id, services.cancel, "Draft discarded.")
    return _change(
        announcement_id,
        services.cancel,
        "Cancelled: {count:,} message(s) not yet sent will not go out.",
    )


@bp.post("/announcements/<int:announcement_id>/publish")
@requires(Role.EDITOR)
def publish(announcement_id: int) -> Response:
    announcement = announcement_or_404(announcement_id)
    form = PublishForm()
    back = redirect(url_for(".detail", announcement_id=announcement_id, _anchor="archive"))
    if not form.validate():
        flash("Choose whether to publish the announcement; nothing was changed.", "error")
        return back
    published = form.published.data == "1"
    if published == announcement.published:
        flash("Nothing to change: " + ("already" if published else "not") + " published.", "info")
        return back
    try:
        services.set_published(announcement, published, by=actor())
        db.session.commit()
    except ValidationFailed as error:
        db.session.rollback()
        flash(error.message, "error")
        return back
    if published:
        flash("Published in the public archive and its feed.", "success")
    else:
        flash("Taken out of the public archive.", "success")
    return back


@bp.post("/announcements/<int:announcement_id>/copy")
@requires(Role.EDITOR)
def copy(announcement_id: int) -> Response:
    announcement = announcement_or_404(announcement_id)
    if not ConfirmForm().validate():
        flash("The form expired; nothing was copied. Try again.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    draft = drafts.copy_as_draft(announcement, by=actor())
    db.session.commit()
    flash(f"This is a new draft copied from announcement {announcement.id}.", "success")
    return redirect(url_for(".edit", announcement_id=draft.id))
