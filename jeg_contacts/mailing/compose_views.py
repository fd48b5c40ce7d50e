"""Back office: writing announcements, their audience and a preview."""

from typing import Any

from flask import (
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.exc import IntegrityError

from jeg_contacts.audiences.services import (
    audience_filter,
    audience_size,
)
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.mailing import drafts, previews
from jeg_contacts.mailing.blueprint import (
    EDITABLE,
    actor,
    announcement_or_404,
    audience_options,
    bp,
    count_text,
    criteria_from,
    describe,
    loaded_stamp,
    saved_audience,
    show_error,
)
from jeg_contacts.mailing.forms import (
    AnnouncementForm,
)
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
)

# --- Composing ----------------------------------------------------------------------------


def _form_data(announcement: Announcement) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": announcement.kind.value,
        "saved_audience": str(announcement.saved_audience_id or ""),
        "loaded_at": loaded_stamp(announcement),
    }
    for language in LANGUAGES:
        data[f"subject_{language}"] = getattr(announcement, f"subject_{language}") or ""
        data[f"body_{language}"] = getattr(announcement, f"body_{language}") or ""
    return data


def _draft(form: AnnouncementForm, criteria: dict[str, Any], saved_id: int | None):
    return drafts.AnnouncementDraft(
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
    saved = saved_audience(form.saved_audience.data)
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
        audience_description=describe(effective),
        saved_audience=saved,
        placeholders=previews.SAMPLE_VALUES,
        **audience_options(),
        **context,
    )
    return page, status


def _compose(announcement: Announcement | None) -> Response | tuple[str, int]:
    audiences = drafts.saved_audiences()
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
        criteria = criteria_from(request.form)
    action = request.form.get("action", "save")
    if action == "preview":
        return _render_compose(form, announcement, criteria, preview=_form_preview(form, criteria))
    if action == "save-audience":
        return _save_audience(form, announcement, criteria)

    if not form.validate():
        return _render_compose(form, announcement, criteria, 400)
    if announcement is not None and form.loaded_at.data != loaded_stamp(announcement):
        form.form_errors.append(
            "Someone else saved this announcement after you opened it, so your changes were "
            "not saved. The form still holds your version; compare it with the saved one "
            "(open the announcement in another tab), then save again to replace it."
        )
        form.loaded_at.data = loaded_stamp(announcement)
        return _render_compose(form, announcement, criteria, 409)
    draft = _draft(form, criteria, form.saved_audience_id)
    try:
        saved = drafts.save_draft(draft, announcement, by=actor())
        db.session.commit()
    except ValidationFailed as error:
        show_error(form, error, {"saved_audience_id": "saved_audience", "status": ""})
        return _render_compose(form, announcement, criteria, 400)
    flash("Draft saved." if saved.status is AnnouncementStatus.DRAFT else "Saved.", "success")
    return redirect(url_for(".detail", announcement_id=saved.id))


def _form_preview(form: AnnouncementForm, criteria: dict[str, Any]) -> previews.Preview:
    announcement = drafts.unsaved_announcement(_draft(form, criteria, form.saved_audience_id))
    return previews.preview(announcement, form.preview_language.data or "en")


def _save_audience(
    form: AnnouncementForm, announcement: Announcement | None, criteria: dict[str, Any]
) -> tuple[str, int]:
    name_field = form.audience_name
    name_field.validate(form)
    name = " ".join((name_field.data or "").split())
    if not name_field.errors and not name:
        name_field.errors = ["Give the audience a name, for example “Danube basin authorities”."]
    existing = drafts.saved_audience_named(name) if name else None
    if existing is not None and not request.form.get("replace_audience"):
        name_field.errors = [
            *name_field.errors,
            f"There is already a saved audience called “{name}”. Choose another name, or tick "
            "“Replace the saved audience of that name”.",
        ]
    if name_field.errors:
        return _render_compose(form, announcement, criteria, 400)
    try:
        audience = drafts.save_audience(name, criteria, by=actor())
        db.session.commit()
    except ValidationFailed as error:
        show_error(form, error, {"name": "audience_name"})
        return _render_compose(form, announcement, criteria, 400)
    except IntegrityError:  # saved under the same name by someone else just now
        db.session.rollback()
        name_field.errors = [f"“{name}” was saved by someone else just now; try again."]
        return _render_compose(form, announcement, criteria, 409)
    count = audience_size(audience.criteria)
    form = AnnouncementForm(formdata=request.form, audiences=drafts.saved_audiences())
    form.saved_audience.data = str(audience.id)
    form.audience_name.data = ""
    return _render_compose(
        form,
        announcement,
        criteria,
        audience_saved=(
            f"Saved the audience “{audience.name}” ({count_text(count)} now). It is chosen "
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
    announcement = announcement_or_404(announcement_id)
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
    saved = saved_audience(request.args.get("saved_audience"))
    criteria = saved.criteria if saved is not None else criteria_from(request.args)
    count = audience_size(criteria)
    description = describe(criteria)
    if saved is not None:
        description = f"saved audience “{saved.name}”: {description}"
    return jsonify(count=count, text=count_text(count), description=description)


@bp.post("/announcements/preview")
@requires(Role.EDITOR)
def preview() -> Response:
    """The message one recipient would get, from the unsaved form (for the live preview)."""
    form = AnnouncementForm(audiences=[])
    saved = saved_audience(request.form.get("saved_audience"))
    shown = _form_preview(form, saved.criteria if saved else criteria_from(request.form))
    return jsonify(
        requested_language=shown.requested_language,
        language=shown.language,
        fallback=shown.fallback,
        subject=shown.subject,
        html=shown.html,
        text=shown.text,
    )
