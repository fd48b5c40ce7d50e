"""Organisations, contacts, interest topics, subscriptions and the consent log."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jeg_contacts.extensions import UTCDateTime, db, db_enum, utcnow
from jeg_contacts.text import SEARCH_KEY_MAX_LENGTH, search_key


class StakeholderType(StrEnum):
    NATIONAL_AUTHORITY = "national_authority"
    RIVER_BASIN_COMMISSION = "river_basin_commission"
    INTERNATIONAL_ORGANISATION = "international_organisation"
    UNIVERSITY = "university"
    NGO = "ngo"
    OPERATOR = "operator"
    LOCAL_AUTHORITY = "local_authority"
    OTHER = "other"

    @property
    def label(self) -> str:
        return str(STAKEHOLDER_TYPE_LABELS[self])


STAKEHOLDER_TYPE_LABELS = {
    StakeholderType.NATIONAL_AUTHORITY: _l("National authority"),
    StakeholderType.RIVER_BASIN_COMMISSION: _l("River basin or lake commission"),
    StakeholderType.INTERNATIONAL_ORGANISATION: _l("International organisation"),
    StakeholderType.UNIVERSITY: _l("University or research institute"),
    StakeholderType.NGO: _l("Non-governmental organisation"),
    StakeholderType.OPERATOR: _l("Operator or industry"),
    StakeholderType.LOCAL_AUTHORITY: _l("Local or regional authority"),
    StakeholderType.OTHER: _l("Other"),
}


class ContactStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    ERASED = "erased"


class TopicGroup(StrEnum):
    GUIDANCE = "guidance"
    ACTIVITIES = "activities"
    GENERAL = "general"

    @property
    def label(self) -> str:
        return str(TOPIC_GROUP_LABELS[self])


TOPIC_GROUP_LABELS = {
    TopicGroup.GUIDANCE: _l("Guidance and checklists"),
    TopicGroup.ACTIVITIES: _l("Activities"),
    TopicGroup.GENERAL: _l("General"),
}


class ConsentAction(StrEnum):
    SIGNUP = "signup"
    CONFIRM = "confirm"
    PREFERENCES_CHANGED = "preferences_changed"
    RESUBSCRIBE = "resubscribe"
    UNSUBSCRIBE = "unsubscribe"
    ERASE = "erase"
    # Added by staff from a list: what they said about why the people agreed to be contacted.
    IMPORTED = "imported"
    # Added by staff by hand, the same way: the person neither signed up nor saw the notice.
    ADDED_BY_STAFF = "added_by_staff"

    @property
    def label(self) -> str:
        return CONSENT_ACTION_LABELS[self]


# How the back office (English only) names each event in a contact's consent log.
CONSENT_ACTION_LABELS = {
    ConsentAction.SIGNUP: "Signed up",
    ConsentAction.CONFIRM: "Confirmed",
    ConsentAction.PREFERENCES_CHANGED: "Changed preferences",
    ConsentAction.RESUBSCRIBE: "Resubscribed",
    ConsentAction.UNSUBSCRIBE: "Unsubscribed",
    ConsentAction.ERASE: "Erased",
    ConsentAction.IMPORTED: "Imported by staff",
    ConsentAction.ADDED_BY_STAFF: "Added by staff",
}


class Organisation(db.Model):
    __tablename__ = "organisations"
    __table_args__ = (sa.UniqueConstraint("normalised_name", "country"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Casefolded, accent- and space-insensitive: "Université de Genève " -> "universite de geneve".
    normalised_name: Mapped[str] = mapped_column(sa.String(SEARCH_KEY_MAX_LENGTH))
    stakeholder_type: Mapped[StakeholderType] = mapped_column(
        db_enum(StakeholderType, "stakeholder_type")
    )
    country: Mapped[str | None] = mapped_column(sa.String(2))
    website: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contacts: Mapped[list["Contact"]] = relationship(back_populates="organisation")


subscriptions = sa.Table(
    "subscriptions",
    db.metadata,
    sa.Column("contact_id", sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("topic_id", sa.ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("subscribed_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Index("ix_subscriptions_topic_id", "topic_id"),
)


class Topic(db.Model):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    label_en: Mapped[str] = mapped_column(sa.String(200))
    label_fr: Mapped[str] = mapped_column(sa.String(200))
    label_ru: Mapped[str] = mapped_column(sa.String(200))
    group: Mapped[TopicGroup] = mapped_column(db_enum(TopicGroup, "topic_group"))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    def label(self, language: str) -> str:
        """The label in `language`, falling back to English."""
        return getattr(self, f"label_{language}", None) or self.label_en


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    salutation: Mapped[str | None] = mapped_column(sa.String(20))
    given_name: Mapped[str] = mapped_column(sa.String(100))
    family_name: Mapped[str] = mapped_column(sa.String(100))
    job_title: Mapped[str | None] = mapped_column(sa.String(200))
    # Their department or unit within the organisation.
    department: Mapped[str | None] = mapped_column(sa.String(200))
    # NULL once erased; the unique key is the lower-cased address.
    email: Mapped[str | None] = mapped_column(sa.String(254))
    email_key: Mapped[str | None] = mapped_column(sa.String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[ContactStatus] = mapped_column(
        db_enum(ContactStatus, "contact_status"), default=ContactStatus.PENDING, index=True
    )
    # Signs the preference and unsubscribe links; rotating it revokes every link sent so far.
    link_secret: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # "given family", casefolded and without accents, kept in step by the listeners below;
    # the directory searches and sorts on it.
    search_name: Mapped[str] = mapped_column(sa.String(201), default="", index=True)
    # Bumped on every UPDATE; a stale edit form (or a concurrent flush) is refused.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    organisation: Mapped[Organisation | None] = relationship(back_populates="contacts")
    topics: Mapped[list[Topic]] = relationship(
        secondary=subscriptions, order_by=(Topic.position, Topic.id)
    )
    consent_events: Mapped[list["ConsentEvent"]] = relationship(
        back_populates="contact", order_by="ConsentEvent.id"
    )

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


@sa.event.listens_for(Contact, "before_insert")
@sa.event.listens_for(Contact, "before_update")
def _refresh_search_name(mapper: object, connection: object, contact: Contact) -> None:
    contact.search_name = search_key(f"{contact.given_name} {contact.family_name}")


class ConsentEvent(db.Model):
    """One entry of a contact's consent history: what they agreed to, when, and how."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[ConsentAction] = mapped_column(db_enum(ConsentAction, "consent_action"))
    # Version of the privacy notice the person saw when they acted; None when the event is
    # not their act (an import or an addition by staff), so the log never claims they agreed
    # to a notice.
    wording_version: Mapped[str | None] = mapped_column(sa.String(20))
    source: Mapped[str] = mapped_column(sa.String(200))
    detail: Mapped[str | None] = mapped_column(sa.Text)

    contact: Mapped[Contact] = relationship(back_populates="consent_events")


class ErasedAddress(db.Model):
    """One-way hash of an erased contact's address, so no import can quietly re-add it."""

    __tablename__ = "erased_addresses"

    email_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
