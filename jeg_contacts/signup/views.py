"""Public pages of the self-service flows; thin wrappers over signup.services."""

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from jeg_contacts import ratelimit
from jeg_contacts.contacts.links import contact_from_manage_token, manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus, StakeholderType
from jeg_contacts.contacts.services import PROFILE_FORM_FIELDS, profile_values
from jeg_contacts.countries import country_name
from jeg_contacts.errors import ExpiredLink, InvalidLink, ValidationFailed
from jeg_contacts.extensions import csrf, db
from jeg_contacts.i18n import LANGUAGES, use_contact_language
from jeg_contacts.signup import services
from jeg_contacts.signup.forms import EmailForm, ProfileForm, SignupForm
from jeg_contacts.signup.tokens import confirmation_from_token

bp = Blueprint("signup", __name__)


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
    values = {name: form[name].data for name in PROFILE_FORM_FIELDS}
    values["topic_ids"] = list(form.topics.data or [])
    return values


def _as_contact(contact: Contact) -> Contact:
    """Pages about a known contact speak the contact's language."""
    use_contact_language(contact.language)
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
    if request.form.get("change_language") in LANGUAGES:
        # A language button of the form sent back with errors: the same form, in the new
        # language, with what was typed; nothing is checked or stored.
        return render_template("signup/signup.html", form=form)
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


def _confirmed(contact: Contact) -> str:
    _as_contact(contact)
    return render_template("signup/confirmed.html", contact=contact, token=manage_token(contact))


def _stakeholder_type_label(value: str) -> str:
    try:
        return StakeholderType(value).label
    except ValueError:
        return value


def _country_label(code: str | None) -> str:
    return country_name(code, str(get_locale() or "en")) if code else ""


def _stored_profile(contact: Contact) -> services.ProfileData:
    values = profile_values(contact)
    values["topic_ids"] = values.pop("topics")
    return services.ProfileData(**values)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> str | tuple[str, int]:
    """GET (and HEAD) only show what is to be confirmed, since mail scanners fetch every link;
    pressing the page's one button (a POST with its CSRF token) confirms."""
    try:
        confirmation = confirmation_from_token(token)
    except ExpiredLink:
        return render_template("signup/link_expired.html", token=token, form=EmailForm()), 400
    contact = _as_contact(confirmation.contact)
    proposal = confirmation.request
    if confirmation.spent:
        # Used already, or another sign-up for the address was confirmed: never apply anything.
        return render_template("signup/link_spent.html", form=EmailForm()), 400
    if proposal is None:
        if contact.status is ContactStatus.ACTIVE:
            # A second click on the link that confirmed: nothing more to do.
            return _confirmed(contact)
        if contact.status is not ContactStatus.PENDING:
            raise InvalidLink("contact is no longer pending")
        details = _stored_profile(contact)
    else:
        details = services.proposed_profile(proposal)
        use_contact_language(details.language)
    if request.method != "POST":
        return render_template(
            "signup/confirm.html",
            details=details,
            email=contact.email if proposal is None else proposal.proposal["email"],
            topics=services.topics_named(details.topic_ids),
            replaces=proposal is not None,
            token=token,
            stakeholder_type_label=_stakeholder_type_label,
            country_label=_country_label,
        )
    try:
        services.confirm(contact, proposal)
        db.session.commit()
    except ValidationFailed:
        # The details no longer pass today's rules (every topic chosen was archived, say).
        db.session.rollback()
        return render_template("signup/link_spent.html", form=EmailForm()), 400
    return _confirmed(contact)


@bp.post("/confirm/<token>/resend")
def resend_confirmation(token: str) -> Response:
    _limit_client_posts()
    try:
        contact = confirmation_from_token(token).contact
    except ExpiredLink as expired:
        contact = db.session.get(Contact, expired.contact_id)
    if contact is not None and contact.status is ContactStatus.PENDING:
        try:
            services.send_confirmation(contact)
        except ValidationFailed as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(url_for(".new_link"))
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
    # Only a POST changes anything: HEAD, which Flask routes with GET, must not save.
    if request.method != "POST":
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


@bp.post("/preferences/<token>/revoke-links")
def revoke_links(token: str) -> Response:
    """The owner's explicit choice to revoke every earlier link; they land on the new one."""
    contact = _as_contact(contact_from_manage_token(token))
    try:
        mailed = services.revoke_links(contact)
    except ValidationFailed as error:
        # The new link could not be mailed: keep the old ones rather than strand the person.
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for(".preferences", token=token))
    db.session.commit()
    flash(_("Links sent to you earlier no longer work."), "success")
    if mailed:
        flash(_("We have emailed you your new link. Until it arrives, bookmark this page."), "info")
    else:
        flash(_("Bookmark this page: it is your new link."), "info")
    return redirect(url_for(".preferences", token=manage_token(contact)))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str) -> str:
    """GET and HEAD ask (link scanners prefetch); POST unsubscribes, RFC 8058 one-click too."""
    contact = _as_contact(contact_from_manage_token(token))
    if request.method != "POST":
        return render_template("signup/unsubscribe.html", contact=contact, token=token)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    services.unsubscribe(contact, services.ONE_CLICK if one_click else services.SELF_SERVICE)
    db.session.commit()
    return render_template("signup/unsubscribed.html", contact=contact, token=token)
