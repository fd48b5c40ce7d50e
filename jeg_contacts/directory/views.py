"""Back office: the contacts directory, contact pages, edits and bulk actions."""

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.routing import BuildError

from jeg_contacts.audiences.services import (
    DEFAULT_SORT,
    ContactFilter,
    all_topics,
    describe_filter,
    normalise_sort,
    parse_ids,
)
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import Contact, ContactStatus, StakeholderType
from jeg_contacts.contacts.services import PROFILE_FORM_FIELDS, profile_values
from jeg_contacts.countries import country_choices, country_groups
from jeg_contacts.directory import bulk as bulk_actions  # `bulk` is the page below
from jeg_contacts.directory import services
from jeg_contacts.directory.forms import BulkForm, ContactForm, NewContactForm, StatusForm
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import MAX_ID, db
from jeg_contacts.pagination import requested_page

bp = Blueprint("directory", __name__, url_prefix="/admin")

# Beyond this the offset means nothing useful, and a huge number must not reach the database.
MAX_TICKED = 500

_FORM_FIELDS = (*PROFILE_FORM_FIELDS, "email", "status")


# --- Helpers ------------------------------------------------------------------------------


def _listing() -> tuple[ContactFilter, str]:
    """The filter and sort order carried in the query string."""
    return (
        ContactFilter.from_args(request.args),
        normalise_sort(request.args.get("sort")),
    )


def _listing_args(contact_filter: ContactFilter, sort: str) -> dict[str, Any]:
    """Query arguments that reopen the directory as it was."""
    args: dict[str, Any] = contact_filter.to_args()
    if sort != DEFAULT_SORT:
        args["sort"] = sort
    return args


def _ticked_scope() -> bool:
    """Whether the person asked for the ticked rows only (rather than every match)."""
    return request.values.get("scope") == "ticked"


def _ticked_ids() -> list[int]:
    return parse_ids(request.values.getlist("ids"))[:MAX_TICKED]


def _contact_or_404(contact_id: int) -> Contact:
    if contact_id > MAX_ID:  # the database would refuse the number itself
        abort(404)
    return db.get_or_404(Contact, contact_id)


def _organisation_url(contact: Contact) -> str | None:
    if contact.organisation_id is None:
        return None
    try:
        return url_for("organisations.detail", organisation_id=contact.organisation_id)
    except BuildError:  # the organisations pages are not installed
        return None


def _note_kept_organisation_type(contact: Contact, chosen_type: str) -> None:
    """Existing organisations are reused as they are: say so when another type was chosen."""
    organisation = contact.organisation
    if organisation is not None and organisation.stakeholder_type.value != chosen_type:
        flash(
            f"{organisation.name} was already recorded as “{organisation.stakeholder_type.label}”"
            " and keeps that type; change it on the organisation's page if it is wrong.",
            "info",
        )


def _show_error(form: Any, error: ValidationFailed) -> None:
    db.session.rollback()
    field = getattr(form, error.field, None) if error.field else None
    if field is None:
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


def _form_data(contact: Contact) -> dict[str, Any]:
    return {
        **profile_values(contact),
        "email": contact.email or "",
        "status": contact.status.value,
        "version": contact.version,
    }


def _contact_data(form: ContactForm) -> services.ContactData:
    values = {name: form[name].data for name in _FORM_FIELDS}
    return services.ContactData(**values, topic_ids=list(form.topics.data or []))


def _shown(field: Any) -> str:
    """A submitted value as the person saw it in the form (the label of a chosen option)."""
    value = str(field.data or "")
    if field.name in ("country", "organisation_country"):
        return dict(country_choices("en")).get(value, value)
    if not hasattr(field, "iter_choices"):
        return value
    labels = {str(choice.value): str(choice.label) for choice in field.iter_choices()}
    return labels.get(value, value)


def _unsaved_changes(form: ContactForm, current: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, submitted value) for every field where the refused form differs from the
    record as it is now, so the person can apply their change again."""
    differences = []
    # In the form's order, as the person filled it in.
    for field in form:
        if field.name not in _FORM_FIELDS:
            continue
        if str(field.data or "") != str(current.get(field.name) or ""):
            differences.append((str(field.label.text), _shown(field)))
    submitted_topics = sorted(form.topics.data or [])
    if submitted_topics != sorted(current["topics"]):
        labels = {choice.value: str(choice.label) for choice in form.topics.iter_choices()}
        chosen = ", ".join(labels.get(topic_id, str(topic_id)) for topic_id in submitted_topics)
        differences.append(("Topics", chosen or "none"))
    return differences


# --- Directory ----------------------------------------------------------------------------


@bp.get("/contacts")
def contacts() -> str:
    contact_filter, sort = _listing()
    page_number = requested_page()
    page = services.directory_page(contact_filter, sort, page_number)
    return render_template(
        "directory/contacts.html",
        page=page,
        contact_filter=contact_filter,
        sort=sort,
        listing_args=_listing_args(contact_filter, sort),
        directory_is_empty=not page.total and not services.has_contacts(),
        topics=all_topics(),
        stakeholder_types=list(StakeholderType),
        country_groups=country_groups("en"),
        country_names=dict(country_choices("en")),
        statuses=list(ContactStatus),
    )


# --- One contact --------------------------------------------------------------------------


@bp.get("/contacts/<int:contact_id>")
def contact(contact_id: int) -> str:
    contact = _contact_or_404(contact_id)
    status_form = StatusForm(data={"status": "", "version": contact.version})
    return render_template(
        "directory/contact.html",
        contact=contact,
        organisation_url=_organisation_url(contact),
        country_names=dict(country_choices("en")),
        entries=services.contact_audit_entries(contact.id),
        status_form=status_form,
        staff_statuses=services.STAFF_STATUSES,
    )


def _render_contact_form(
    form: ContactForm, contact: Contact | None, status: int = 200, **context: Any
) -> tuple[str, int]:
    archived = [topic for topic in contact.topics if not topic.active] if contact else []
    page = render_template(
        "directory/contact_form.html",
        form=form,
        contact=contact,
        archived_topics=archived,
        **context,
    )
    return page, status


def _not_saved(
    form: ContactForm,
    contact_id: int | None,
    error: ValidationFailed | IntegrityError | None = None,
) -> tuple[str, int]:
    """The add or edit form again (400), with why it was not saved; `error` None means the
    form's own validation refused it."""
    duplicate_id = None
    if isinstance(error, IntegrityError):
        # Another contact took the address between our check and the commit.
        db.session.rollback()
        form.email.errors = ["Another contact already has this email address."]
    elif error is not None:
        if isinstance(error, services.DuplicateContact):
            duplicate_id = error.existing_id
        _show_error(form, error)
    # As stored: after a rollback the edit's unsaved values must not show as the record's.
    contact = _contact_or_404(contact_id) if contact_id is not None else None
    return _render_contact_form(form, contact, 400, duplicate_id=duplicate_id)


def _conflict(contact_id: int, refused: ContactForm) -> tuple[str, int]:
    """Show the record as it is now, with what the person tried to save beside it."""
    db.session.rollback()
    contact = _contact_or_404(contact_id)
    current = _form_data(contact)
    unsaved = _unsaved_changes(refused, current)
    form = ContactForm(
        formdata=None, data=current, statuses=services.staff_statuses(contact.status)
    )
    return _render_contact_form(form, contact, 409, conflict=True, unsaved=unsaved)


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@requires(Role.EDITOR)
def edit_contact(contact_id: int) -> Response | tuple[str, int]:
    contact = _contact_or_404(contact_id)
    if contact.status is ContactStatus.ERASED:
        flash("This contact's data was erased at their request; there is nothing to edit.", "error")
        return redirect(url_for(".contact", contact_id=contact.id))
    statuses = services.staff_statuses(contact.status)
    if request.method == "GET":
        return _render_contact_form(
            ContactForm(data=_form_data(contact), statuses=statuses), contact
        )
    form = ContactForm(statuses=statuses)
    if not form.validate():
        return _not_saved(form, contact_id)
    try:
        changes = services.update_contact(
            contact,
            _contact_data(form),
            expected_version=form.version.data,
            staff_email=current_user.email,
        )
        db.session.commit()
    except (services.ContactChanged, StaleDataError):
        return _conflict(contact_id, form)
    except (ValidationFailed, IntegrityError) as error:
        return _not_saved(form, contact_id, error)
    _note_kept_organisation_type(contact, form.stakeholder_type.data)
    if changes:
        flash(f"Saved. Changed: {', '.join(changes).replace('_', ' ')}.", "success")
    else:
        flash("Nothing was changed.", "success")
    return redirect(url_for(".contact", contact_id=contact_id))


@bp.route("/contacts/new", methods=["GET", "POST"])
@requires(Role.EDITOR)
def new_contact() -> Response | tuple[str, int]:
    form = NewContactForm()
    if not form.is_submitted():
        form.language.data = "en"
        # Only the person's own confirmation makes them active, unless staff choose otherwise.
        form.status.data = ContactStatus.PENDING.value
        return _render_contact_form(form, None)
    if not form.validate():
        return _not_saved(form, None)
    try:
        contact = services.add_contact(
            _contact_data(form), current_user.email, basis=form.basis.data or ""
        )
        db.session.commit()
    except (ValidationFailed, IntegrityError) as error:
        return _not_saved(form, None, error)
    _note_kept_organisation_type(contact, form.stakeholder_type.data)
    if contact.status is ContactStatus.PENDING:
        flash(
            f"Added {contact.full_name}. A confirmation link was emailed to "
            f"{contact.email}; they become active once they confirm.",
            "success",
        )
    else:
        flash(f"Added {contact.full_name} as an active contact.", "success")
    return redirect(url_for(".contact", contact_id=contact.id))


@bp.post("/contacts/<int:contact_id>/status")
@requires(Role.EDITOR)
def change_status(contact_id: int) -> Response:
    contact = _contact_or_404(contact_id)
    form = StatusForm()
    back = redirect(url_for(".contact", contact_id=contact_id))
    if not form.validate():
        flash("Choose a status from the list.", "error")
        return back
    try:
        changed = services.change_status(
            contact,
            form.status.data,
            expected_version=form.version.data,
            staff_email=current_user.email,
        )
        db.session.commit()
    except (services.ContactChanged, StaleDataError):
        db.session.rollback()
        flash(
            "Someone else changed this contact meanwhile, so the status was not changed. "
            "The page now shows the current values; change the status again if still needed.",
            "error",
        )
    except ValidationFailed as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        if changed:
            flash(f"Status changed to {form.status.data}.", "success")
        else:
            flash(f"The contact was already {form.status.data}.", "success")
    return back


# --- Bulk actions -------------------------------------------------------------------------


def _render_bulk(
    form: BulkForm,
    contact_filter: ContactFilter,
    sort: str,
    ids: list[int],
    status: int = 200,
    **context: Any,
) -> tuple[str, int]:
    page = render_template(
        "directory/bulk.html",
        form=form,
        contact_filter=contact_filter,
        description=describe_filter(contact_filter),
        listing_args=_listing_args(contact_filter, sort),
        ids=ids,
        selected=bulk_actions.count_selected(contact_filter, ids),
        **context,
    )
    return page, status


@bp.get("/contacts/bulk")
@requires(Role.EDITOR)
def bulk() -> Response | tuple[str, int]:
    """Choose a bulk action for the filtered (or ticked) contacts, then confirm it."""
    contact_filter, sort = _listing()
    ids = _ticked_ids()
    if _ticked_scope() and not ids:
        flash("Tick at least one contact first, or choose a bulk action for all matches.", "error")
        return redirect(url_for(".contacts", **_listing_args(contact_filter, sort)))
    form = BulkForm(request.args, meta={"csrf": False}, topics=all_topics())
    if "action" not in request.args:
        return _render_bulk(form, contact_filter, sort, ids)
    try:
        change = bulk_actions.bulk_change(
            form.action.data, form.chosen_topic_id, form.new_status.data
        )
    except ValidationFailed as error:
        _show_error(form, error)
        return _render_bulk(form, contact_filter, sort, ids, 400)
    preview = bulk_actions.preview_bulk_change(contact_filter, ids, change)
    return _render_bulk(form, contact_filter, sort, ids, change=change, preview=preview)


@bp.post("/contacts/bulk")
@requires(Role.EDITOR)
def apply_bulk() -> Response | tuple[str, int]:
    contact_filter, sort = _listing()
    ids = _ticked_ids()
    if _ticked_scope() and not ids:
        flash("No contact was ticked; nothing was changed.", "error")
        return redirect(url_for(".contacts", **_listing_args(contact_filter, sort)))
    form = BulkForm(topics=all_topics())
    if not form.validate():
        flash("The form expired or was incomplete; nothing was changed. Choose again.", "error")
        scope = {"scope": "ticked", "ids": ids} if ids else {}
        return redirect(url_for(".bulk", **_listing_args(contact_filter, sort), **scope))
    try:
        change = bulk_actions.bulk_change(
            form.action.data, form.chosen_topic_id, form.new_status.data
        )
        count = bulk_actions.apply_bulk_change(
            contact_filter,
            ids,
            change,
            staff_email=current_user.email,
            expected_count=form.confirmed_count.data,
        )
        db.session.commit()
    except ValidationFailed as error:
        _show_error(form, error)
        return _render_bulk(form, contact_filter, sort, ids, 400)
    except bulk_actions.SelectionChanged:
        db.session.rollback()
        preview = bulk_actions.preview_bulk_change(contact_filter, ids, change)
        return _render_bulk(
            form, contact_filter, sort, ids, 409, change=change, preview=preview, moved=True
        )
    flash(f"Done: {change.describe()} for {count:,} contact(s).", "success")
    return redirect(url_for(".contacts", **_listing_args(contact_filter, sort)))
