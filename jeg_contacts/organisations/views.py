"""Back office: the organisation list, detail, edit and merge pages."""

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import STAKEHOLDER_TYPE_LABELS, Organisation
from jeg_contacts.countries import country_name
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.organisations import merging, services
from jeg_contacts.organisations.forms import OrganisationForm
from jeg_contacts.pagination import requested_page

bp = Blueprint("organisations", __name__, url_prefix="/admin")

PER_PAGE = 50
CONTACTS_PER_PAGE = 50


def _website_link(website: str | None) -> Markup:
    """A link to the website; only http(s) addresses become links, whatever older data holds."""
    if not website:
        return Markup("")
    if not website.lower().startswith(("https://", "http://")):
        return escape(website)
    return Markup('<a href="{0}" rel="noopener noreferrer nofollow">{0}</a>').format(website)


@bp.context_processor
def _helpers() -> dict[str, object]:
    return {
        "country_name": lambda code: country_name(code, "en") if code else "—",
        "website_link": _website_link,
    }


@bp.get("/organisations")
def index() -> str:
    filters = services.OrganisationFilters.from_args(request.args)
    listing = services.organisation_page(filters, page=requested_page(), per_page=PER_PAGE)
    return render_template(
        "organisations/index.html",
        page=listing.page,
        filters=filters,
        counts=listing.counts,
        countries=listing.countries,
        stakeholder_types=STAKEHOLDER_TYPE_LABELS,
    )


@bp.get("/organisations/<int:organisation_id>")
def detail(organisation_id: int) -> str:
    organisation = db.get_or_404(Organisation, organisation_id)
    contacts = db.paginate(
        services.contacts_query(organisation),
        page=requested_page(),
        per_page=CONTACTS_PER_PAGE,
        error_out=False,
    )
    return render_template(
        "organisations/detail.html",
        organisation=organisation,
        contacts=contacts,
        entries=services.audit_history(organisation),
    )


def _show_error(form: OrganisationForm, error: ValidationFailed) -> None:
    db.session.rollback()
    field = getattr(form, error.field, None) if error.field else None
    if field is None:
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


@bp.route("/organisations/<int:organisation_id>/edit", methods=["GET", "POST"])
@requires(Role.EDITOR)
def edit(organisation_id: int) -> Response | str | tuple[str, int]:
    organisation = db.get_or_404(Organisation, organisation_id)
    if request.method == "GET":
        form = OrganisationForm(
            name=organisation.name,
            stakeholder_type=organisation.stakeholder_type.value,
            country=organisation.country or "",
            website=organisation.website,
            loaded_token=services.edit_token(organisation),
        )
        return render_template("organisations/edit.html", organisation=organisation, form=form)

    form = OrganisationForm()
    duplicate = None
    changed_meanwhile = False
    if form.validate():
        data = services.OrganisationData(
            name=form.name.data,
            stakeholder_type=form.stakeholder_type.data,
            country=form.country.data,
            website=form.website.data,
        )
        try:
            changes = services.update_organisation(
                organisation, data, loaded_token=form.loaded_token.data
            )
            db.session.commit()
        except services.ChangedMeanwhile as error:
            _show_error(form, error)
            changed_meanwhile = True
            # Their version is now the one this form overwrites if saved again.
            form.loaded_token.data = services.edit_token(organisation)
        except services.DuplicateOrganisation as error:
            _show_error(form, error)
            duplicate = error.existing
        except ValidationFailed as error:
            _show_error(form, error)
        else:
            flash(
                f"Saved {organisation.name}." if changes else "Nothing to save: no field changed.",
                "success",
            )
            return redirect(url_for(".detail", organisation_id=organisation.id))
    return render_template(
        "organisations/edit.html",
        organisation=organisation,
        form=form,
        duplicate=duplicate,
        changed_meanwhile=changed_meanwhile,
    ), 400


@bp.get("/organisations/<int:organisation_id>/merge")
@requires(Role.EDITOR)
def choose_merge(organisation_id: int) -> str:
    organisation = db.get_or_404(Organisation, organisation_id)
    # First visit: suggest organisations with the same name, the likeliest duplicates; those
    # in other countries are listed only when searched for.
    searched = "q" in request.args
    q = request.args.get("q", organisation.name).strip()[:200]
    candidates = merging.merge_candidates(organisation, q) if q else None
    listed = [*candidates.same_country, *candidates.other_countries] if candidates else []
    return render_template(
        "organisations/choose_merge.html",
        organisation=organisation,
        q=q,
        searched=searched,
        candidates=candidates.same_country if candidates else [],
        other_countries=candidates.other_countries if candidates else [],
        counts=services.contact_counts_for(candidate.id for candidate in listed),
        limit=merging.MERGE_CANDIDATE_LIMIT,
    )


def _refuse_self_merge(organisation: Organisation) -> tuple[str, int]:
    return render_template(
        "organisations/choose_merge.html",
        organisation=organisation,
        q="",
        searched=False,
        candidates=[],
        other_countries=[],
        counts={},
        limit=merging.MERGE_CANDIDATE_LIMIT,
        error="An organisation cannot be merged with itself. Choose the duplicate to merge in.",
    ), 400


def _render_confirm(kept: Organisation, other: Organisation, error: str | None = None) -> str:
    return render_template(
        "organisations/confirm_merge.html",
        kept=kept,
        other=other,
        counts=services.contact_counts_for([kept.id, other.id]),
        across=merging.crosses_countries(kept, other),
        error=error,
    )


@bp.get("/organisations/<int:organisation_id>/merge/<int:other_id>")
@requires(Role.EDITOR)
def confirm_merge(organisation_id: int, other_id: int) -> str | tuple[str, int]:
    kept = db.get_or_404(Organisation, organisation_id)
    other = db.get_or_404(Organisation, other_id)
    if kept.id == other.id:
        return _refuse_self_merge(kept)
    return _render_confirm(kept, other)


def _confirmed_countries(value: str) -> tuple[str, str] | None:
    """The (from, into) country codes a merge across countries was confirmed for: the
    checkbox's value, "BE:FR"."""
    moving_from, separator, moving_into = value.partition(":")
    return (moving_from, moving_into) if separator else None


@bp.post("/organisations/<int:organisation_id>/merge/<int:other_id>")
@requires(Role.EDITOR)
def merge(organisation_id: int, other_id: int) -> Response | str | tuple[str, int]:
    kept = db.get_or_404(Organisation, organisation_id)
    other = db.get_or_404(Organisation, other_id)
    other_label = services.label(other)
    try:
        moved = merging.merge_organisations(
            kept,
            other,
            countries_confirmed=_confirmed_countries(request.form.get("confirm_countries", "")),
        )
        db.session.commit()
    except merging.CountriesNotConfirmed as error:
        db.session.rollback()
        return _render_confirm(kept, other, error.message), 400
    except ValidationFailed:
        db.session.rollback()
        return _refuse_self_merge(kept)
    flash(
        f"Merged {other_label} into {kept.name}: {len(moved)} contact(s) moved.",
        "success",
    )
    return redirect(url_for(".detail", organisation_id=kept.id))
