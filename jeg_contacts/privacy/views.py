"""Personal-data requests: the contact's own download and erasure, from their preferences
page, and the same two handled by the secretariat in the back office."""

import json

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.links import contact_from_manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.downloads import attachment_headers
from jeg_contacts.errors import InvalidLink
from jeg_contacts.extensions import MAX_ID, db
from jeg_contacts.i18n import use_contact_language
from jeg_contacts.privacy import services
from jeg_contacts.privacy.forms import EraseForm
from jeg_contacts.signup.forms import EmailForm

bp = Blueprint("privacy", __name__)


@bp.errorhandler(InvalidLink)
def invalid_link(error: InvalidLink) -> tuple[str, int]:
    """A revoked or forged preference link: the page that offers a new one, as signup's."""
    return render_template("signup/link_invalid.html", form=EmailForm()), 400


@bp.post("/preferences/<token>/my-data")
def download_my_data(token: str) -> Response:
    contact = contact_from_manage_token(token)
    body = json.dumps(services.contact_data_export(contact), ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="jeg-contacts-my-data.json"'},
    )


@bp.route("/preferences/<token>/erase", methods=["GET", "POST"])
def erase_my_data(token: str) -> str:
    contact = contact_from_manage_token(token)
    use_contact_language(contact.language)
    if request.method != "POST":
        return render_template("privacy/erase.html", contact=contact, token=token)
    services.erase_self(contact)
    db.session.commit()
    return render_template("privacy/erased.html")


def _contact_or_404(contact_id: int) -> Contact:
    if contact_id > MAX_ID:
        abort(404)
    return db.get_or_404(Contact, contact_id)


@bp.get("/admin/contacts/<int:contact_id>/personal-data.json")
@requires(Role.ADMIN)
def contact_data(contact_id: int) -> Response:
    """Everything stored about a contact, as the self-service download gives it."""
    document = services.data_for_request(_contact_or_404(contact_id))
    db.session.commit()
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers=attachment_headers(f"jeg-contact-{contact_id}-personal-data.json"),
    )


@bp.route("/admin/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
@requires(Role.ADMIN)
def erase_contact(contact_id: int) -> Response | tuple[str, int]:
    contact = _contact_or_404(contact_id)
    back = redirect(url_for("directory.contact", contact_id=contact_id))
    if contact.status is ContactStatus.ERASED:
        flash("This contact's data was already erased.", "info")
        return back
    form = EraseForm()
    if form.validate_on_submit():
        services.erase_on_request(contact, current_user.email)
        db.session.commit()
        flash(
            "The contact's personal data was erased. Only a fingerprint of the address is kept, "
            "so no import can add it again.",
            "success",
        )
        return back
    page = render_template("privacy/erase_contact.html", contact=contact, form=form)
    return page, 400 if form.is_submitted() else 200
