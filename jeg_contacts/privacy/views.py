"""Back office: personal-data requests handled by the secretariat (a copy, or erasure)."""

import json

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user

from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.downloads import attachment_headers
from jeg_contacts.extensions import MAX_ID, db
from jeg_contacts.privacy import services
from jeg_contacts.privacy.forms import EraseForm

bp = Blueprint("privacy", __name__, url_prefix="/admin")


def _contact_or_404(contact_id: int) -> Contact:
    if contact_id > MAX_ID:
        abort(404)
    return db.get_or_404(Contact, contact_id)


@bp.get("/contacts/<int:contact_id>/personal-data.json")
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


@bp.route("/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
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
