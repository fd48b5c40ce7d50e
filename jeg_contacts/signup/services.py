"""Self-service behaviour: register, confirm, change preferences, unsubscribe (erasure and
the data download are privacy's)."""

from dataclasses import asdict, dataclass, replace
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from jeg_contacts.contacts.links import manage_token
from jeg_contacts.contacts.mail import may_email, queue_email, send_confirmation
from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus, Topic
from jeg_contacts.contacts.services import (
    PRIVACY_NOTICE_VERSION,
    ProfileData,
    active_topics,
    apply_profile,
    check_profile,
    describe_subscription,
    new_link_secret,
    record_consent,
)
from jeg_contacts.errors import InvalidLink, ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs.registry import job
from jeg_contacts.jobs.runner import JobContext
from jeg_contacts.mailer import external_url
from jeg_contacts.signup.models import SignupRequest
from jeg_contacts.signup.tokens import request_confirm_token
from jeg_contacts.text import email_key, normalise_email

SELF_SERVICE = "self-service"
ONE_CLICK = "one-click unsubscribe (RFC 8058)"


@dataclass(frozen=True)
class SignupData(ProfileData):
    email: str = ""
    consent: bool = False


def contact_by_email(email: str) -> Contact | None:
    return db.session.scalar(sa.select(Contact).where(Contact.email_key == email_key(email)))


def register(data: SignupData) -> Contact:
    """Handle a sign-up: a new address becomes a pending contact and gets a confirmation link;
    for an address on file that is not active, the details wait in a SignupRequest until its
    owner confirms; an active address gets its preferences link. Nothing stored about an
    existing contact changes here. The caller shows the same answer whatever happened."""
    if not data.consent:
        raise ValidationFailed("consent", _("Tick the box to agree, or we cannot send you news."))
    email = normalise_email(data.email)
    forget_expired_requests()
    contact = contact_by_email(email)
    if contact is not None and contact.status is ContactStatus.ACTIVE:
        send_preferences_link(contact)
        return contact
    if contact is not None:
        _propose(contact, data, email)
        return contact
    # Added to the session only once valid, so no autoflush writes a half-filled row.
    contact = Contact(email=email, email_key=email_key(email), link_secret=new_link_secret())
    apply_profile(contact, data)
    db.session.add(contact)
    contact.status = ContactStatus.PENDING
    db.session.flush()
    record_consent(contact, ConsentAction.SIGNUP, SELF_SERVICE, describe_subscription(contact))
    send_confirmation(contact)
    return contact


def _propose(contact: Contact, data: SignupData, email: str) -> None:
    """Keep a sign-up's details for `contact` until the owner of the address confirms them."""
    profile = check_profile(data)
    if not may_email(contact):
        # Without its email nobody could ever confirm the request: keep nothing.
        return
    details = asdict(data)
    del details["consent"]
    request = SignupRequest(
        contact_id=contact.id,
        proposal={**details, "email": email, "privacy_notice": PRIVACY_NOTICE_VERSION},
        created_at=utcnow(),
    )
    db.session.add(request)
    db.session.flush()
    queue_email(
        contact,
        "confirm",
        _l("Please confirm your subscription to JEG news"),
        name=f"{profile.given_name} {profile.family_name}",
        language=profile.language,
        confirm_url=external_url("signup.confirm", token=request_confirm_token(contact, request)),
        days=current_app.config["CONFIRM_LINK_MAX_AGE_DAYS"],
    )


def forget_expired_requests() -> int:
    """Delete sign-up requests whose confirmation link has expired: they hold personal data.
    (A link stops working CONFIRM_LINK_MAX_AGE_DAYS after its request was made.)"""
    max_age = timedelta(days=current_app.config["CONFIRM_LINK_MAX_AGE_DAYS"])
    expired = SignupRequest.created_at < utcnow() - max_age
    return db.session.execute(sa.delete(SignupRequest).where(expired)).rowcount


@job("signup.forget_expired_requests", every=timedelta(hours=1))
def forget_expired_requests_job(context: JobContext) -> dict[str, int]:
    """Housekeeping: expired requests go even when nobody signs up for a while (each sign-up
    and confirmation drops them too)."""
    return {"deleted": forget_expired_requests()}


def send_preferences_link(contact: Contact) -> bool:
    """Email the contact's preference link, unless the address had its share today."""
    if not may_email(contact):
        return False
    token = manage_token(contact)
    queue_email(
        contact,
        "preferences_link",
        _l("Your link to manage your JEG subscription"),
        preferences_url=external_url("signup.preferences", token=token),
        unsubscribe_url=external_url("signup.unsubscribe", token=token),
    )
    return True


def request_new_link(raw_email: str) -> None:
    """Send whichever link fits the address's state; silently nothing for unknown addresses.
    Earlier links keep working: anyone may ask, so asking must not break the owner's links."""
    email = normalise_email(raw_email)
    forget_expired_requests()
    contact = contact_by_email(email)
    if contact is None:
        return
    if contact.status is ContactStatus.PENDING:
        send_confirmation(contact)
    else:
        send_preferences_link(contact)


def revoke_links(contact: Contact) -> bool:
    """Revoke every preference and unsubscribe link sent so far, the owner's explicit choice
    from the preference centre; emails the new link if the daily allowance permits."""
    contact.link_secret = new_link_secret()
    return send_preferences_link(contact)


def proposed_profile(request: SignupRequest) -> ProfileData:
    """The details a sign-up request would save, as ProfileData."""
    fields = set(ProfileData.__dataclass_fields__)
    return ProfileData(**{key: value for key, value in request.proposal.items() if key in fields})


def topics_named(topic_ids: list[int]) -> list[Topic]:
    """The active topics among `topic_ids`, in display order."""
    wanted = set(topic_ids)
    return [topic for topic in active_topics() if topic.id in wanted]


def confirm(contact: Contact, request: SignupRequest | None = None) -> None:
    """Activate the contact with the details of the confirmed link: those of `request`, or for
    a new address's link those already stored. Confirming twice is harmless."""
    if request is None:
        if contact.status is ContactStatus.ACTIVE:
            return
        if contact.status is not ContactStatus.PENDING:
            raise InvalidLink("contact is no longer pending")
    else:
        details = proposed_profile(request)
        # A topic archived since the sign-up is no longer offered: confirm the others.
        topic_ids = [topic.id for topic in topics_named(details.topic_ids)]
        apply_profile(contact, replace(details, topic_ids=topic_ids))
        contact.email = request.proposal["email"]
        signup = record_consent(
            contact, ConsentAction.SIGNUP, SELF_SERVICE, describe_subscription(contact)
        )
        # The consent was given with the sign-up form, under the notice shown then.
        signup.at = request.created_at
        signup.wording_version = request.proposal["privacy_notice"]
    contact.status = ContactStatus.ACTIVE
    contact.confirmed_at = utcnow()
    record_consent(contact, ConsentAction.CONFIRM, SELF_SERVICE, describe_subscription(contact))
    # The other requests for this address were not confirmed: their details are dropped.
    db.session.execute(sa.delete(SignupRequest).where(SignupRequest.contact_id == contact.id))


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
