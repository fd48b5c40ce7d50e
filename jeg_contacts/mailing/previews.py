"""Previews and test sends: an announcement as one recipient would read it, built exactly as
the worker builds it, with sample details and links that lead to nobody's preferences."""

import re
from dataclasses import dataclass, replace
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import sqlalchemy as sa
from flask import current_app

from jeg_contacts.audiences.services import audience_topic_ids
from jeg_contacts.audit.services import Actor
from jeg_contacts.contacts.models import Contact, ContactStatus, Topic
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.mailer.messages import external_url
from jeg_contacts.mailer.transports import deliver_ready
from jeg_contacts.mailing.drafts import LANGUAGE_LABELS
from jeg_contacts.mailing.models import Announcement
from jeg_contacts.mailing.rendering import MessageFactory, Recipient
from jeg_contacts.mailing.services import (
    effective_criteria,
    language_version,
    list_id,
    record_action,
)
from jeg_contacts.text import email_key, normalise_email

# Stand-ins for a recipient's details in previews and in tests to unknown addresses.
SAMPLE_VALUES = {
    "given_name": "Anna",
    "family_name": "Example",
    "organisation": "Example Ministry of Environment",
}


def _neutral_links() -> tuple[str, str]:
    # Previews and tests must not carry anybody's working preferences or unsubscribe link:
    # their links lead to the page where people ask for their own.
    url = external_url("signup.new_link")
    return url, url


def _topics_text(criteria: dict[str, Any], language: str) -> str:
    chosen = audience_topic_ids(criteria)
    query = sa.select(Topic).order_by(Topic.position, Topic.id)
    query = query.where(Topic.id.in_(chosen)) if chosen else query.where(Topic.active).limit(2)
    return ", ".join(topic.label(language) for topic in db.session.scalars(query))


def sample_recipient(
    announcement: Announcement, language: str, email: str = "someone@example.org"
) -> Recipient:
    """A recipient for previews and tests: the contact with this address if there is one,
    else sample details; links never lead to anybody's preferences."""
    values = dict(SAMPLE_VALUES)
    contact = None
    if email:
        contact = db.session.scalar(
            sa.select(Contact).where(
                Contact.email_key == email_key(email), Contact.status != ContactStatus.ERASED
            )
        )
    if contact is not None:
        values = {
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "organisation": contact.organisation.name if contact.organisation else "",
        }
    preferences_url, unsubscribe_url = _neutral_links()
    return Recipient(
        email=email,
        topics=_topics_text(effective_criteria(announcement), language),
        preferences_url=preferences_url,
        unsubscribe_url=unsubscribe_url,
        **values,
    )


@dataclass(frozen=True)
class Preview:
    """A message as its recipient reads it: built exactly as the worker builds it."""

    requested_language: str
    language: str
    subject: str
    text: str
    html: str

    @property
    def fallback(self) -> bool:
        return self.language != self.requested_language


def _factory() -> MessageFactory:
    return MessageFactory.for_sender(current_app.config["MAIL_FROM"], list_id())


def preview(announcement: Announcement, language: str, email: str = "") -> Preview:
    """The message one recipient would get in `language` (English when there is no such
    version), personalised with sample details."""
    language = language if language in LANGUAGES else "en"
    version = language_version(announcement, language)
    recipient = sample_recipient(announcement, version.language, email or "anna@example.org")
    raw = _factory().build(version, recipient).raw
    message = message_from_bytes(raw, policy=email_policy.default)
    return Preview(
        requested_language=language,
        language=version.language,
        subject=str(message["Subject"]),
        text=message.get_body(preferencelist=("plain",)).get_content(),
        html=message.get_body(preferencelist=("html",)).get_content(),
    )


TEST_SUBJECT_PREFIX = "[TEST] "


def record_test(
    announcement: Announcement, language: str, raw_address: str, by: Actor | None = None
) -> str:
    """Check the address a test goes to (ValidationFailed on "email") and audit the test as
    done by `by`; returns the address. Commit, then call send_test()."""
    address = checked_test_address(raw_address)
    language = language if language in LANGUAGES else "en"
    record_action(
        announcement,
        "test_sent",
        f"Test of “{announcement.subject_en}” in {LANGUAGE_LABELS[language]} to {address}",
        by=by,
    )
    return address


def send_test(announcement: Announcement, language: str, address: str) -> Preview:
    """Send one test message to `address`, built as the real ones are, its subject marked
    [TEST]. Call after the commit that records it: it talks to the mail server."""
    language = language if language in LANGUAGES else "en"
    version = language_version(announcement, language)
    version = replace(version, subject=TEST_SUBJECT_PREFIX + version.subject)
    recipient = sample_recipient(announcement, version.language, address)
    deliver_ready(address, _factory().build(version, recipient))
    return Preview(language, version.language, version.subject, "", "")


# A plain local-part@host address, such as the first administrator's admin@localhost.
_LOCAL_ADDRESS = re.compile(r"[^@\s\"<>(),;:\\\[\]]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def checked_test_address(raw: str) -> str:
    """The normalised address a test goes to (ValidationFailed on "email" if it is not one).

    Internal addresses (admin@localhost, name@mail.internal) are accepted too: a test goes to
    a staff member, and the mail server is the judge of where it can deliver."""
    try:
        return normalise_email(raw)
    except ValidationFailed:
        candidate = (raw or "").strip()
        if len(candidate) <= 254 and _LOCAL_ADDRESS.fullmatch(candidate):
            return candidate
        raise
