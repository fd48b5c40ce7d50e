"""Self-service behaviour: register, confirm, change preferences, unsubscribe, erase."""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from jeg_contacts import ratelimit
from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus
from jeg_contacts.contacts.services import SALUTATIONS as SALUTATIONS  # for signup.forms
from jeg_contacts.contacts.services import (
    ProfileData,
    apply_profile,
    describe_subscription,
    email_key,
    erase_contact,
    new_link_secret,
    normalise_email,
    record_consent,
)
from jeg_contacts.errors import InvalidLink, ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailer import build_message, external_url, render_email, send_after_commit
from jeg_contacts.mailer.messages import MessageBuildError
from jeg_contacts.signup.tokens import confirm_token, manage_token

SELF_SERVICE = "self-service"
ONE_CLICK = "one-click unsubscribe (RFC 8058)"


@dataclass(frozen=True)
class SignupData(ProfileData):
    email: str = ""
    consent: bool = False


def contact_by_email(email: str) -> Contact | None:
    return db.session.scalar(sa.select(Contact).where(Contact.email_key == email_key(email)))


def register(data: SignupData) -> Contact:
    """Handle a sign-up: new or lapsed addresses get a confirmation link, active ones a
    preferences link. The caller shows the same answer whatever happened."""
    if not data.consent:
        raise ValidationFailed("consent", _("Tick the box to agree, or we cannot send you news."))
    email = normalise_email(data.email)
    contact = contact_by_email(email)
    if contact is not None and contact.status is ContactStatus.ACTIVE:
        send_preferences_link(contact)
        return contact
    if contact is None:
        # Added to the session only once valid, so no autoflush writes a half-filled row.
        contact = Contact(email=email, email_key=email_key(email), link_secret=new_link_secret())
    apply_profile(contact, data)
    db.session.add(contact)
    contact.email = email
    contact.status = ContactStatus.PENDING
    db.session.flush()
    record_consent(contact, ConsentAction.SIGNUP, SELF_SERVICE, describe_subscription(contact))
    send_confirmation(contact)
    return contact


def _may_email(contact: Contact) -> bool:
    """At most EMAILS_PER_ADDRESS_PER_DAY self-service emails to one address per 24 hours."""
    return ratelimit.allow(
        "address-mail",
        contact.email_key or "",
        current_app.config["EMAILS_PER_ADDRESS_PER_DAY"],
        timedelta(days=1),
    )


def _queue_email(contact: Contact, template: str, subject: LazyString, **context: object) -> None:
    """Queue the email for after the commit, or refuse what it was for: a mail that cannot be
    written fails here (ValidationFailed), so nobody is told to wait for one that never
    comes, and the caller's rollback stores nothing."""
    with force_locale(contact.language):
        localised_subject = str(subject)
    text, html = render_email(template, contact.language, contact=contact, **context)
    try:
        send_after_commit(
            build_message(
                to_email=contact.email or "",
                to_name=contact.full_name,
                subject=localised_subject,
                text=text,
                html=html,
            )
        )
    except MessageBuildError as error:
        current_app.logger.error("could not write the %s email: %s", template, error)
        raise ValidationFailed(
            "",
            _(
                "We could not prepare the email we need to send you, so nothing was saved. "
                "Please try again later."
            ),
        ) from error


def send_confirmation(contact: Contact) -> bool:
    """Email a fresh confirmation link, unless the address had its share today."""
    if not _may_email(contact):
        return False
    _queue_email(
        contact,
        "confirm",
        _l("Please confirm your subscription to JEG news"),
        confirm_url=external_url("signup.confirm", token=confirm_token(contact)),
        days=current_app.config["CONFIRM_LINK_MAX_AGE_DAYS"],
    )
    return True


def send_preferences_link(contact: Contact, *, rotate: bool = False) -> bool:
    """Email the contact's preference link; `rotate` first revokes every earlier link."""
    if not _may_email(contact):
        return False
    if rotate:
        contact.link_secret = new_link_secret()
    token = manage_token(contact)
    _queue_email(
        contact,
        "preferences_link",
        _l("Your link to manage your JEG subscription"),
        preferences_url=external_url("signup.preferences", token=token),
        unsubscribe_url=external_url("signup.unsubscribe", token=token),
    )
    return True


def request_new_link(raw_email: str) -> None:
    """Send whichever link fits the address's state; silently nothing for unknown addresses."""
    email = normalise_email(raw_email)
    contact = contact_by_email(email)
    if contact is None:
        return
    if contact.status is ContactStatus.PENDING:
        send_confirmation(contact)
    else:
        send_preferences_link(contact, rotate=True)


def confirm(contact: Contact) -> None:
    """Activate a pending contact; confirming twice is harmless."""
    if contact.status is ContactStatus.ACTIVE:
        return
    if contact.status is not ContactStatus.PENDING:
        raise InvalidLink("contact is no longer pending")
    contact.status = ContactStatus.ACTIVE
    contact.confirmed_at = utcnow()
    record_consent(contact, ConsentAction.CONFIRM, SELF_SERVICE, describe_subscription(contact))


def update_preferences(contact: Contact, data: ProfileData) -> None:
    """Save a contact's own changes; saving topics after unsubscribing subscribes again."""
    apply_profile(contact, data)
    if contact.status in (ContactStatus.UNSUBSCRIBED, ContactStatus.BOUNCED):
        contact.status = ContactStatus.ACTIVE
        action = ConsentAction.RESUBSCRIBE
    else:
        action = ConsentAction.PREFERENCES_CHANGED
    record_consent(contact, action, SELF_SERVICE, describe_subscription(contact))


def unsubscribe(contact: Contact, source: str = SELF_SERVICE) -> None:
    """Stop all mail to the contact; topics are kept so a later change of mind restores them."""
    if contact.status is ContactStatus.UNSUBSCRIBED:
        return
    contact.status = ContactStatus.UNSUBSCRIBED
    record_consent(contact, ConsentAction.UNSUBSCRIBE, source)


def erase_self(contact: Contact) -> None:
    erase_contact(contact, SELF_SERVICE)
