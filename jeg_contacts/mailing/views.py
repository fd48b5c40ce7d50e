"""Back office: writing, testing, sending and following announcements."""

import smtplib
from datetime import timedelta
from enum import StrEnum
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from jeg_contacts.audiences.services import (
    all_topics,
    audience_filter,
    audience_languages,
    audience_size,
    describe_audience,
)
from jeg_contacts.audit.services import Actor
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import StakeholderType
from jeg_contacts.countries import country_groups
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import MAX_ID, db, utcnow
from jeg_contacts.i18n import LANGUAGE_NAMES, LANGUAGES
from jeg_contacts.mailing import services
from jeg_contacts.mailing.forms import (
    KIND_LABELS,
    LANGUAGE_LABELS,
    AnnouncementForm,
    ConfirmForm,
    PublishForm,
    SendForm,
    SendTestForm,
)
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    DeliveryStatus,
    SavedAudience,
)
from jeg_contacts.pagination import requested_page

bp = Blueprint("mailing", __name__, url_prefix="/admin")

# The filters an audience is built from (ContactFilter's query arguments).
AUDIENCE_ARGS = ("topic", "type", "country", "language")
MAX_SEARCH_LENGTH = 200
EDITABLE = (AnnouncementStatus.DRAFT, AnnouncementStatus.SCHEDULED)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "language_labels": LANGUAGE_LABELS,
        "statuses": AnnouncementStatus,
        "delivery_statuses": DeliveryStatus,
    }


# --- Helpers ------------------------------------------------------------------------------


def _announcement_or_404(announcement_id: int) -> Announcement:
    if announcement_id > MAX_ID:  # the database would refuse the number itself
        abort(404)
    return db.get_or_404(Announcement, announcement_id)


def _member(enum: type[StrEnum], raw: str | None) -> Any:
    """The member of `enum` with value `raw`, or None."""
    return next((member for member in enum if member.value == raw), None)


def _criteria(values: MultiDict) -> dict[str, list[str]]:
    """The audience filters among submitted values, normalised as they are stored."""
    return audience_filter({key: values.getlist(key) for key in AUDIENCE_ARGS}).to_args()


def _saved_audience(raw: str | None) -> SavedAudience | None:
    raw = raw or ""
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        return None
    return db.session.get(SavedAudience, int(raw))


def _describe(criteria: dict[str, Any]) -> str:
    return describe_audience(criteria)


def _count_text(count: int) -> str:
    return f"{count:,} active contact" + ("" if count == 1 else "s")


def _audience_options() -> dict[str, Any]:
    return {
        "topic_options": [
            (str(topic.id), topic.label_en + ("" if topic.active else " (archived)"))
            for topic in all_topics()
        ],
        "type_options": [(member.value, member.label) for member in StakeholderType],
        "country_groups": country_groups("en"),
        "language_options": list(LANGUAGE_NAMES.items()),
    }


def _show_error(form: Any, error: ValidationFailed, field_map: dict[str, str] | None = None):
    db.session.rollback()
    name = (field_map or {}).get(error.field, error.field)
    field = getattr(form, name, None) if name else None
    if field is None or not hasattr(field, "errors"):
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


def _loaded_stamp(announcement: Announcement) -> str:
    return announcement.updated_at.isoformat() if announcement.updated_at else ""


def _actor() -> Actor:
    """The signed-in staff member, as the services audit them."""
    return Actor.staff(current_user._get_current_object())


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} minute" + ("" if minutes == 1 else "s")
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


def _progress_data(announcement: Announcement, progress: services.Progress) -> dict[str, Any]:
    """The progress of a send as the page shows it; also the JSON the page polls."""
    counts = progress.counts
    summary = (
        f"{progress.done:,} of {progress.total:,} done ({progress.percent}%)"
        if progress.total
        else "No recipients queued."
    )
    rate_text = eta_text = ""
    rate = progress.rate_per_second
    if rate is not None:
        rate_text = f"{progress.rate_per_second * 60:,.0f} messages per minute (last minute)"
    if announcement.status is AnnouncementStatus.SENDING:
        if progress.eta_seconds is not None:
            eta_text = f"Time left: {_duration(progress.eta_seconds)}."
        elif progress.remaining and progress.waiting_to_retry >= progress.remaining:
            eta_text = "Waiting to retry temporary failures."
        elif progress.remaining:
            eta_text = "Waiting for the delivery worker to start sending."
    elif announcement.status is AnnouncementStatus.SCHEDULED and announcement.scheduled_at:
        eta_text = f"Starts at {announcement.scheduled_at:%Y-%m-%d %H:%M} UTC."
    elif announcement.status is AnnouncementStatus.PAUSED:
        eta_text = "Paused: nothing is sent until it is resumed."
    warning = ""
    if (
        announcement.status in (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED)
        and progress.remaining
        and not progress.worker_running
    ):
        warning = (
            "No delivery worker is running, so nothing is being sent. Start one with "
            "“flask --app wsgi worker” (make run starts one)."
        )
    return {
        "id": announcement.id,
        "status": announcement.status.value,
        "finished": progress.finished,
        "counts": counts,
        "done": progress.done,
        "total": progress.total,
        "percent": progress.percent,
        "waiting_to_retry": progress.waiting_to_retry,
        "rate_per_minute": round(rate * 60, 1) if rate is not None else None,
        "eta_seconds": progress.eta_seconds,
        "summary": summary,
        "rate_text": rate_text,
        "eta_text": eta_text,
        "warning": warning,
    }


# --- The list -----------------------------------------------------------------------------


@bp.get("/announcements")
def index() -> str:
    status = _member(AnnouncementStatus, request.args.get("status"))
    page = services.announcement_page(requested_page(), status)
    return render_template(
        "mailing/index.html",
        page=page,
        status=status,
        counts=services.counts_for([announcement.id for announcement in page.items]),
    )


# --- Composing ----------------------------------------------------------------------------


def _form_data(announcement: Announcement) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": announcement.kind.value,
        "saved_audience": str(announcement.saved_audience_id or ""),
        "loaded_at": _loaded_stamp(announcement),
    }
    for language in LANGUAGES:
        data[f"subject_{language}"] = getattr(announcement, f"subject_{language}") or ""
        data[f"body_{language}"] = getattr(announcement, f"body_{language}") or ""
    return data


def _draft(form: AnnouncementForm, criteria: dict[str, Any], saved_id: int | None):
    return services.AnnouncementDraft(
        kind=form.kind.data or "",
        criteria=criteria,
        saved_audience_id=saved_id,
        **{
            f"{part}_{language}": getattr(form, f"{part}_{language}").data or ""
            for part in ("subject", "body")
            for language in LANGUAGES
        },
    )


def _render_compose(
    form: AnnouncementForm,
    announcement: Announcement | None,
    criteria: dict[str, Any],
    status: int = 200,
    **context: Any,
) -> tuple[str, int]:
    saved = _saved_audience(form.saved_audience.data)
    effective = saved.criteria if saved is not None else criteria
    if "preview" not in context:
        context["preview"] = _form_preview(form, criteria) if form.body_en.data else None
    page = render_template(
        "mailing/compose.html",
        form=form,
        announcement=announcement,
        chosen=audience_filter(criteria).to_args(),
        audience_locked=announcement is not None
        and announcement.status is AnnouncementStatus.SCHEDULED,
        recipient_count=audience_size(effective),
        audience_description=_describe(effective),
        saved_audience=saved,
        placeholders=services.SAMPLE_VALUES,
        **_audience_options(),
        **context,
    )
    return page, status


def _compose(announcement: Announcement | None) -> Response | tuple[str, int]:
    audiences = services.saved_audiences()
    locked = announcement is not None and announcement.status is AnnouncementStatus.SCHEDULED
    if request.method == "GET":
        if announcement is None:
            return _render_compose(AnnouncementForm(audiences=audiences), None, {})
        form = AnnouncementForm(data=_form_data(announcement), audiences=audiences)
        return _render_compose(form, announcement, announcement.criteria or {})

    form = AnnouncementForm(audiences=audiences)
    if locked:
        # The recipients were fixed when the send was scheduled.
        criteria = announcement.criteria or {}
        form.saved_audience.data = str(announcement.saved_audience_id or "")
    else:
        criteria = _criteria(request.form)
    action = request.form.get("action", "save")
    if action == "preview":
        return _render_compose(form, announcement, criteria, preview=_form_preview(form, criteria))
    if action == "save-audience":
        return _save_audience(form, announcement, criteria)

    if not form.validate():
        return _render_compose(form, announcement, criteria, 400)
    if announcement is not None and form.loaded_at.data != _loaded_stamp(announcement):
        form.form_errors.append(
            "Someone else saved this announcement after you opened it, so your changes were "
            "not saved. The form still holds your version; compare it with the saved one "
            "(open the announcement in another tab), then save again to replace it."
        )
        form.loaded_at.data = _loaded_stamp(announcement)
        return _render_compose(form, announcement, criteria, 409)
    draft = _draft(form, criteria, form.saved_audience_id)
    try:
        saved = services.save_draft(draft, announcement, by=_actor())
        db.session.commit()
    except ValidationFailed as error:
        _show_error(form, error, {"saved_audience_id": "saved_audience", "status": ""})
        return _render_compose(form, announcement, criteria, 400)
    flash("Draft saved." if saved.status is AnnouncementStatus.DRAFT else "Saved.", "success")
    return redirect(url_for(".detail", announcement_id=saved.id))


def _form_preview(form: AnnouncementForm, criteria: dict[str, Any]) -> services.Preview:
    announcement = services.unsaved_announcement(_draft(form, criteria, form.saved_audience_id))
    return services.preview(announcement, form.preview_language.data or "en")


def _save_audience(
    form: AnnouncementForm, announcement: Announcement | None, criteria: dict[str, Any]
) -> tuple[str, int]:
    name_field = form.audience_name
    name_field.validate(form)
    name = " ".join((name_field.data or "").split())
    if not name_field.errors and not name:
        name_field.errors = ["Give the audience a name, for example “Danube basin authorities”."]
    existing = services.saved_audience_named(name) if name else None
    if existing is not None and not request.form.get("replace_audience"):
        name_field.errors = [
            *name_field.errors,
            f"There is already a saved audience called “{name}”. Choose another name, or tick "
            "“Replace the saved audience of that name”.",
        ]
    if name_field.errors:
        return _render_compose(form, announcement, criteria, 400)
    try:
        audience = services.save_audience(name, criteria, by=_actor())
        db.session.commit()
    except ValidationFailed as error:
        _show_error(form, error, {"name": "audience_name"})
        return _render_compose(form, announcement, criteria, 400)
    except IntegrityError:  # saved under the same name by someone else just now
        db.session.rollback()
        name_field.errors = [f"“{name}” was saved by someone else just now; try again."]
        return _render_compose(form, announcement, criteria, 409)
    count = audience_size(audience.criteria)
    form = AnnouncementForm(formdata=request.form, audiences=services.saved_audiences())
    form.saved_audience.data = str(audience.id)
    form.audience_name.data = ""
    return _render_compose(
        form,
        announcement,
        criteria,
        audience_saved=(
            f"Saved the audience “{audience.name}” ({_count_text(count)} now). It is chosen "
            "for this announcement; save the draft to keep that choice."
        ),
    )


@bp.route("/announcements/new", methods=["GET", "POST"])
@requires(Role.EDITOR)
def new() -> Response | tuple[str, int]:
    return _compose(None)


@bp.route("/announcements/<int:announcement_id>/edit", methods=["GET", "POST"])
@requires(Role.EDITOR)
def edit(announcement_id: int) -> Response | tuple[str, int]:
    announcement = _announcement_or_404(announcement_id)
    if announcement.status not in EDITABLE:
        flash(
            f"This announcement is {announcement.status.value}; only drafts and scheduled "
            "announcements can be edited. Copy it into a new draft to reuse its text.",
            "error",
        )
        return redirect(url_for(".detail", announcement_id=announcement.id))
    return _compose(announcement)


@bp.get("/announcements/audience-count")
def audience_count() -> Response:
    """How many active contacts an audience reaches now (for the compose page's live count)."""
    saved = _saved_audience(request.args.get("saved_audience"))
    criteria = saved.criteria if saved is not None else _criteria(request.args)
    count = audience_size(criteria)
    description = _describe(criteria)
    if saved is not None:
        description = f"saved audience “{saved.name}”: {description}"
    return jsonify(count=count, text=_count_text(count), description=description)


@bp.post("/announcements/preview")
@requires(Role.EDITOR)
def preview() -> Response:
    """The message one recipient would get, from the unsaved form (for the live preview)."""
    form = AnnouncementForm(audiences=[])
    saved = _saved_audience(request.form.get("saved_audience"))
    shown = _form_preview(form, saved.criteria if saved else _criteria(request.form))
    return jsonify(
        requested_language=shown.requested_language,
        language=shown.language,
        fallback=shown.fallback,
        subject=shown.subject,
        html=shown.html,
        text=shown.text,
    )


# --- One announcement ---------------------------------------------------------------------


def _delivery_status(raw: str | None) -> DeliveryStatus | None:
    return _member(DeliveryStatus, raw)


def _render_detail(
    announcement: Announcement, status: int = 200, test_form: SendTestForm | None = None
) -> tuple[str, int]:
    progress = services.progress(announcement)
    q = " ".join(request.args.get("q", "").split())[:MAX_SEARCH_LENGTH]
    delivery_status = _delivery_status(request.args.get("status"))
    log = None
    if progress.total:
        log = services.delivery_log(announcement.id, q, delivery_status, requested_page())
    criteria = services.effective_criteria(announcement)
    if test_form is None:
        test_form = SendTestForm(data={"email": current_user.email, "language": "en"})
    page = render_template(
        "mailing/detail.html",
        announcement=announcement,
        progress=progress,
        progress_data=_progress_data(announcement, progress),
        log=log,
        q=q,
        delivery_status=delivery_status,
        previews=[
            services.preview(announcement, language)
            for language in LANGUAGES
            if announcement.has_language(language)
        ],
        audience_description=_describe(criteria),
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
    return _render_detail(_announcement_or_404(announcement_id))


@bp.get("/announcements/<int:announcement_id>/status.json")
def status(announcement_id: int) -> Response:
    """Progress of the send, polled by the announcement page while it is under way."""
    announcement = _announcement_or_404(announcement_id)
    response = jsonify(_progress_data(announcement, services.progress(announcement)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/announcements/<int:announcement_id>/test")
@requires(Role.EDITOR)
def send_test(announcement_id: int) -> Response | tuple[str, int]:
    announcement = _announcement_or_404(announcement_id)
    form = SendTestForm()
    if not form.validate():
        return _render_detail(announcement, 400, form)
    language = form.language.data
    try:
        address = services.record_test(announcement, language, form.email.data, by=_actor())
    except ValidationFailed as error:
        _show_error(form, error)
        return _render_detail(announcement, 400, form)
    db.session.commit()
    try:
        sent = services.send_test(announcement, language, address)
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
        audience_description=_describe(criteria),
        now=now,
        earliest=(now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    return page, status


@bp.route("/announcements/<int:announcement_id>/send", methods=["GET", "POST"])
@requires(Role.EDITOR)
def send(announcement_id: int) -> Response | tuple[str, int]:
    """Confirm the recipients, then queue them now or schedule the send."""
    announcement = _announcement_or_404(announcement_id)
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
        queued = services.start_sending(announcement, at, by=_actor())
        db.session.commit()
    except ValidationFailed as error:
        if error.field not in ("send_at", "audience"):
            db.session.rollback()
            flash(f"Nothing was sent: {error.message}", "error")
            return redirect(url_for(".detail", announcement_id=announcement_id))
        _show_error(form, error, {"audience": ""})
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
    announcement = _announcement_or_404(announcement_id)
    if not ConfirmForm().validate():
        flash("The form expired; nothing was changed. Try again.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    try:
        result = change(announcement, by=_actor())
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
    announcement = _announcement_or_404(announcement_id)
    if announcement.status in (AnnouncementStatus.SENT, AnnouncementStatus.CANCELLED):
        flash(f"This announcement is already {announcement.status.value}.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    if request.method == "GET":
        return render_template(
            "mailing/cancel.html",
            announcement=announcement,
            counts=services.status_counts(announcement.id),
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
    announcement = _announcement_or_404(announcement_id)
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
        services.set_published(announcement, published, by=_actor())
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
    announcement = _announcement_or_404(announcement_id)
    if not ConfirmForm().validate():
        flash("The form expired; nothing was copied. Try again.", "error")
        return redirect(url_for(".detail", announcement_id=announcement_id))
    draft = services.copy_as_draft(announcement, by=_actor())
    db.session.commit()
    flash(f"This is a new draft copied from announcement {announcement.id}.", "success")
    return redirect(url_for(".edit", announcement_id=draft.id))
