"""Mail to a contact about their own links, within a daily allowance per address: the
confirmation of a pending contact's details, whoever added them (sign-up, the back office, an
import)."""

import hashlib
import hmac
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from jeg_contacts import ratelimit
from jeg_contacts.contacts.links import confirm_token
from jeg_contacts.contacts.models import Contact
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.mailer import build_message, external_url, render_email, send_after_commit
from jeg_contacts.mailer.messages import MessageBuildError


def mail_cap_key(email: str) -> str:
    """The key the per-address mail cap counts on: the address without its +tag, so that
    name+1@x and name+2@x share one allowance. Keyed with SECRET_KEY, so the rate-limit table
    holds nothing anyone could match to an address by hashing guesses."""
    local, _at, domain = email.rpartition("@")
    untagged = f"{local.split('+', 1)[0]}@{domain}".casefold()
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"address-mail|{untagged}".encode(), hashlib.sha256).hexdigest()


def may_email(contact: Contact) -> bool:
    """At most EMAILS_PER_ADDRESS_PER_DAY self-service emails to one address per 24 hours."""
    return ratelimit.allow(
        "address-mail",
        mail_cap_key(contact.email or ""),
        current_app.config["EMAILS_PER_ADDRESS_PER_DAY"],
        timedelta(days=1),
    )


def queue_email(
    contact: Contact,
    template: str,
    subject: LazyString,
    *,
    name: str | None = None,
    language: str | None = None,
    **context: object,
) -> None:
    """Queue the email for after the commit, by default in the contact's name and language,
    or refuse what it was for: a mail that cannot be written fails here (ValidationFailed),
    so nobody is told to wait for one that never comes, and the caller's rollback stores
    nothing."""
    name = contact.full_name if name is None else name
    language = language or contact.language
    with force_locale(language):
        localised_subject = str(subject)
    text, html = render_email(template, language, contact=contact, name=name, **context)
    try:
        send_after_commit(
            build_message(
                to_email=contact.email or "",
                to_name=name,
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
    """Email a fresh link confirming the contact's own details, unless the address had its
    share today."""
    if not may_email(contact):
        return False
    queue_email(
        contact,
        "confirm",
        _l("Please confirm your subscription to JEG news"),
        confirm_url=external_url("signup.confirm", token=confirm_token(contact)),
        days=current_app.config["CONFIRM_LINK_MAX_AGE_DAYS"],
    )
    return True
