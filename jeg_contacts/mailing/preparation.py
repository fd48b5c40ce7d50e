"""Preparing claimed deliveries: who each one goes to, and its message, built per recipient.

Each language version of an announcement is rendered once and kept, as is the set of topics
its audience asks for; per recipient only the links, the topics line and the placeholders
change (`MessageFactory.build`). Every message passes the header check all mail gets
(`ReadyMessage`); one that cannot be built is a failed delivery, never a message sent."""

import threading
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from jeg_contacts.audiences.services import audience_topic_ids
from jeg_contacts.contacts.links import manage_token_for
from jeg_contacts.contacts.models import Contact, ContactStatus, Organisation, Topic, subscriptions
from jeg_contacts.extensions import db
from jeg_contacts.mailer import external_url
from jeg_contacts.mailer.messages import ReadyMessage
from jeg_contacts.mailing.models import Announcement, Delivery
from jeg_contacts.mailing.rendering import LanguageVersion, MessageFactory, Recipient
from jeg_contacts.mailing.services import effective_criteria, language_version, list_id


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed delivery and what is needed to build its message."""

    delivery_id: int
    announcement_id: int
    attempts: int
    recipient: Recipient | None  # None: skip (no longer active)
    language: str


@dataclass(frozen=True)
class _Links:
    """Each recipient's preference and unsubscribe links. Routing builds each URL once; then
    only the token changes (werkzeug's URL building costs more than the rest of a message)."""

    preferences_template: tuple[str, str]
    unsubscribe_template: tuple[str, str]

    @classmethod
    def for_app(cls) -> "_Links":
        def template(endpoint: str) -> tuple[str, str]:
            head, _marker, tail = external_url(endpoint, token="TOKENSLOT").partition("TOKENSLOT")
            return head, tail

        return cls(template("signup.preferences"), template("signup.unsubscribe"))

    def preferences(self, token: str) -> str:
        head, tail = self.preferences_template
        return f"{head}{token}{tail}"

    def unsubscribe(self, token: str) -> str:
        head, tail = self.unsubscribe_template
        return f"{head}{token}{tail}"


class Preparation:
    """Turns claimed delivery ids into jobs, and jobs into messages; shared by a worker's
    sender threads (its caches are locked). Create it in an app context."""

    def __init__(self) -> None:
        self._links = _Links.for_app()
        self._factory = MessageFactory.for_sender(current_app.config["MAIL_FROM"], list_id())
        self._versions: dict[tuple[int, str], LanguageVersion] = {}
        self._topic_filters: dict[int, set[int]] = {}
        self._cache_lock = threading.Lock()

    def jobs(self, connection: sa.Connection, ids: list[int]) -> list[Job]:
        """Everything needed to send the claimed deliveries, in two queries on `connection`."""
        rows = connection.execute(
            sa.select(
                Delivery.id,
                Delivery.announcement_id,
                Delivery.attempts,
                Contact.id,
                Contact.status,
                Contact.email,
                Contact.given_name,
                Contact.family_name,
                Contact.language,
                Contact.link_secret,
                Organisation.name,
            )
            .join(Contact, Contact.id == Delivery.contact_id)
            .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        ).all()
        topics = _topics_of(connection, [row[3] for row in rows])
        jobs = []
        for (
            delivery_id, announcement_id, attempts, contact_id, status, email, given, family,
            language, link_secret, organisation,
        ) in rows:  # fmt: skip
            recipient = None
            if ContactStatus(status) is ContactStatus.ACTIVE and email:
                version = self.version(announcement_id, language)
                wanted = self._topic_filter(announcement_id)
                labels = [
                    translations.get(version.language) or translations["en"]
                    for topic_id, translations in topics.get(contact_id, [])
                    if not wanted or topic_id in wanted
                ]
                token = manage_token_for(contact_id, link_secret)
                recipient = Recipient(
                    email=email,
                    given_name=given,
                    family_name=family,
                    organisation=organisation or "",
                    topics=", ".join(labels),
                    preferences_url=self._links.preferences(token),
                    unsubscribe_url=self._links.unsubscribe(token),
                )
            jobs.append(Job(delivery_id, announcement_id, attempts, recipient, language))
        connection.rollback()  # end the read transaction; nothing was changed
        return jobs

    def build(self, job: Job, recipient: Recipient) -> ReadyMessage:
        """The message of `job` to `recipient`; MessageBuildError if it cannot be sent safely."""
        return self._factory.build(self.version(job.announcement_id, job.language), recipient)

    def version(self, announcement_id: int, language: str) -> LanguageVersion:
        key = (announcement_id, language)
        with self._cache_lock:
            if key not in self._versions:
                announcement = db.session.get(Announcement, announcement_id)
                self._versions[key] = language_version(announcement, language)
            return self._versions[key]

    def _topic_filter(self, announcement_id: int) -> set[int]:
        with self._cache_lock:
            if announcement_id not in self._topic_filters:
                announcement = db.session.get(Announcement, announcement_id)
                self._topic_filters[announcement_id] = audience_topic_ids(
                    effective_criteria(announcement)
                )
            return self._topic_filters[announcement_id]


def _topics_of(
    connection: sa.Connection, contact_ids: list[int]
) -> dict[int, list[tuple[int, dict[str, str]]]]:
    """Each contact's topics in display order: (id, label by language)."""
    topics: dict[int, list[tuple[int, dict[str, str]]]] = {}
    for contact_id, topic_id, label_en, label_fr, label_ru in connection.execute(
        sa.select(
            subscriptions.c.contact_id, Topic.id, Topic.label_en, Topic.label_fr, Topic.label_ru
        )
        .join(Topic, Topic.id == subscriptions.c.topic_id)
        .where(subscriptions.c.contact_id.in_(contact_ids))
        .order_by(Topic.position, Topic.id)
    ):
        translations = {"en": label_en, "fr": label_fr, "ru": label_ru}
        topics.setdefault(contact_id, []).append((topic_id, translations))
    return topics
