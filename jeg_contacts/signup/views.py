"""Public pages of the self-service flows; thin wrappers over signup.services."""

import json
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, refresh
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from jeg_contacts import ratelimit
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.contacts.services import contact_data_export, profile_values
from jeg_contacts.errors import ExpiredLink, InvalidLink, ValidationFailed
from jeg_contacts.extensions import csrf, db
from jeg_contacts.signup import services
from jeg_contacts.signup.forms import EmailForm, ProfileForm, SignupForm
from jeg_contacts.signup.tokens import (
    contact_from_confirm_token,
    contact_from_manage_token,
    manage_token,
)

bp = Blueprint("signup", __name__)

_PROFILE_FIELDS = (
    "organisation_name",
    "stakeholder_type",
    "organisation_country",
    "organisation_website",
    "salutation",
    "given_name",
    "family_name",
    "job_title",
    "phone",
    "country",
    "language",
)


def _limit_client_posts() -> None:
    """Answer 429 once a client has sent too many sign-up style POSTs in the window."""
    config = current_app.config
    allowed = ratelimit.allow(
        "signup-post",
        request.remote_addr or "unknown",
        config["SIGNUP_RATE_LIMIT"],
        timedelta(seconds=config["SIGNUP_RATE_WINDOW_SECONDS"]),
    )
    # Counted even if the rest of the request fails validation.
    db.session.commit()
    if not allowed:
        abort(429)


def _show_error(form: ProfileForm | EmailForm, error: ValidationFailed) -> None:
    db.session.rollback()
    field = getattr(form, error.field, None)
    if field is None:
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


def _profile_values(form: ProfileForm) -> dict:
    values = {name: form[name].data for name in _PROFILE_FIELDS}
    values["topic_ids"] = list(form.topics.data or [])
    return values


def _as_contact(contact: Contact) -> Contact:
    """Pages about a known contact speak the contact's language."""
    g.contact_language = contact.language
    refresh()
    return contact


@bp.errorhandler(InvalidLink)
def invalid_link(error: InvalidLink) -> tuple[str, int]:
    return render_template("signup/link_invalid.html", form=EmailForm()), 400


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | str | tuple[str, int]:
    form = SignupForm()
    if not form.is_submitted():
        form.language.data = str(get_locale())
        return render_template("signup/signup.html", form=form)
    _limit_client_posts()
    if form.fax_number.data:
        # A bot filled the honeypot: it sees the same answer as a person, nothing is stored.
        return redirect(url_for(".check_inbox"))
    if form.validate():
        try:
            services.register(
                services.SignupData(
                    **_profile_values(form), email=form.email.data, consent=form.consent.data
                )
            )
            db.session.commit()
        except ValidationFailed as error:
            _show_error(form, error)
        except IntegrityError:
            # A concurrent sign-up for the same address won the race; the answer is the same.
            db.session.rollback()
            return redirect(url_for(".check_inbox"))
        else:
            return redirect(url_for(".check_inbox"))
    return render_template("signup/signup.html", form=form), 400


@bp.get("/signup/check-your-inbox")
def check_inbox() -> str:
    return render_template("signup/check_inbox.html")


@bp.get("/confirm/<token>")
def confirm(token: str) -> str | tuple[str, int]:
    try:
        contact = contact_from_confirm_token(token)
    except ExpiredLink:
        return render_template("signup/link_expired.html", token=token, form=EmailForm()), 400
    _as_contact(contact)
    services.confirm(contact)
    db.session.commit()
    return render_template("signup/confirmed.html", contact=contact, token=manage_token(contact))


@bp.post("/confirm/<token>/resend")
def resend_confirmation(token: str) -> Response:
    _limit_client_posts()
    try:
        contact = contact_from_confirm_token(token)
    except ExpiredLink as expired:
        contact = db.session.get(Contact, expired.contact_id)
    if contact is not None and contact.status is ContactStatus.PENDING:
        services.send_confirmation(contact)
        db.session.commit()
    return redirect(url_for(".link_sent"))


@bp.route("/new-link", methods=["GET", "POST"])
def new_link() -> Response | str | tuple[str, int]:
    form = EmailForm()
    if not form.is_submitted():
        return render_template("signup/new_link.html", form=form)
    _limit_client_posts()
    if form.validate():
        try:
            services.request_new_link(form.email.data)
            db.session.commit()
        except ValidationFailed as error:
            _show_error(form, error)
        else:
            return redirect(url_for(".link_sent"))
    return render_template("signup/new_link.html", form=form), 400


@bp.get("/new-link/sent")
def link_sent() -> str:
    return render_template("signup/link_sent.html")


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> Response | str | tuple[str, int]:
    contact = _as_contact(contact_from_manage_token(token))
    if request.method == "GET":
        form = ProfileForm(data=profile_values(contact))
        return render_template("signup/preferences.html", form=form, contact=contact, token=token)
    form = ProfileForm()
    if form.validate():
        try:
            services.update_preferences(contact, services.ProfileData(**_profile_values(form)))
            db.session.commit()
        except ValidationFailed as error:
            _show_error(form, error)
        else:
            _as_contact(contact)
            flash(_("Your preferences are saved."), "success")
            return redirect(url_for(".preferences", token=token))
    return render_template("signup/preferences.html", form=form, contact=contact, token=token), 400


@bp.post("/preferences/<token>/my-data")
def download_data(token: str) -> Response:
    contact = contact_from_manage_token(token)
    body = json.dumps(contact_data_export(contact), ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="jeg-contacts-my-data.json"'},
    )


@bp.route("/preferences/<token>/erase", methods=["GET", "POST"])
def erase(token: str) -> str:
    contact = _as_contact(contact_from_manage_token(token))
    if request.method == "GET":
        return render_template("signup/erase.html", contact=contact, token=token)
    services.erase_self(contact)
    db.session.commit()
    return render_template("signup/erased.html")


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str) -> str:
    """GET asks (link scanners prefetch); POST unsubscribes, including RFC 8058 one-click."""
    contact = _as_contact(contact_from_manage_token(token))
    if request.method == "GET":
        return render_template("signup/unsubscribe.html", contact=contact, token=token)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    services.unsubscribe(contact, services.ONE_CLICK if one_click else services.SELF_SERVICE)
    db.session.commit()
    return render_template("signup/unsubscribed.html", contact=contact, token=token)
