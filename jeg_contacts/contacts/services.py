"""Rules shared by every way a contact is created or changed (sign-up, back office, import)."""

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import email_validator
import sqlalchemy as sa
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from email_validator.syntax import (
    validate_email_domain_name,
    validate_email_length,
    validate_email_local_part,
)
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from jeg_contacts.audit import services as audit
from jeg_contacts.contacts.models import (
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    ErasedAddress,
    Organisation,
    StakeholderType,
    Topic,
    search_key,
)
from jeg_contacts.countries import iso_codes
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.i18n import LANGUAGES
from jeg_contacts.mailer.transports import forget_mail_to
from jeg_contacts.mailing.models import Delivery
from jeg_contacts.signup.models import SignupRequest

# Bumped whenever the privacy notice changes; every consent event records the version agreed to.
PRIVACY_NOTICE_VERSION = "2026-11"

SALUTATIONS = ("ms", "mr", "mx", "dr", "prof")

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _email_candidate(raw: str) -> str:
    """The address as typed, stripped; ValidationFailed when empty or over several lines."""
    candidate = (raw or "").strip()
    if not candidate:
        raise ValidationFailed("email", _("Enter your email address."))
    if _CONTROL_CHARS.search(candidate):
        raise ValidationFailed("email", _("The email address must be on one line."))
    return candidate


def _invalid_email() -> ValidationFailed:
    return ValidationFailed("email", _("Enter a valid email address, like name@example.org."))


def normalise_email(raw: str) -> str:
    """The address in canonical form, or ValidationFailed('email') with a reason."""
    candidate = _email_candidate(raw)
    try:
        result = validate_email(
            candidate,
            check_deliverability=current_app.config["EMAIL_CHECK_DELIVERABILITY"],
            allow_smtputf8=False,
        )
    except EmailNotValidError:
        raise _invalid_email() from None
    return result.ascii_email


class EmailNormaliser:
    """normalise_email for the many addresses of one import, with the same outcome for each.

    Most of email-validator's time goes on the part after the @-sign (its Unicode and IDNA
    rules), and the addresses of a big file share comparatively few domains. So each distinct
    domain is checked once (and looked up once in DNS when deliverability is checked), while
    every local part and every length still gets email-validator's own checks, in its order.
    Addresses that need more than a split at the @-sign (a non-ASCII or quoted local part, a
    display name, a bracketed IP address) go through validate_email itself.

    email-validator's module settings are read once, when the normaliser is made: it lasts
    one import. tests/contacts/test_email_normaliser.py checks it against normalise_email."""

    def __init__(self) -> None:
        self.check_deliverability = bool(current_app.config["EMAIL_CHECK_DELIVERABILITY"])
        self.allow_empty_local = email_validator.ALLOW_EMPTY_LOCAL
        self.strict = email_validator.STRICT
        self.test_environment = email_validator.TEST_ENVIRONMENT
        self.globally_deliverable = email_validator.GLOBALLY_DELIVERABLE
        self.timeout = email_validator.DEFAULT_TIMEOUT
        # Domain as written -> (ASCII form, Unicode form), or the error it was refused with.
        self._domains: dict[str, tuple[str, str] | EmailNotValidError] = {}
        self._undeliverable: dict[str, EmailNotValidError | None] = {}

    def __call__(self, raw: str) -> str:
        candidate = _email_candidate(raw)
        try:
            return self.ascii_email(candidate)
        except EmailNotValidError:
            raise _invalid_email() from None

    def ascii_email(self, candidate: str) -> str | None:
        """validate_email(candidate, allow_smtputf8=False).ascii_email, or its error."""
        local, _at, domain = candidate.partition("@")
        # When what comes before the first @-sign is ASCII without quotes or "<",
        # email-validator splits the address there, finds no display name and leaves the
        # local part as it is. Anything else, and the empty or bracketed domains it handles
        # apart, is left to validate_email.
        if not domain or domain[0] == "[" or not local.isascii() or '"' in local or "<" in local:
            return validate_email(
                candidate,
                allow_smtputf8=False,
                allow_empty_local=self.allow_empty_local,
                strict=self.strict,
                check_deliverability=self.check_deliverability,
                test_environment=self.test_environment,
                globally_deliverable=self.globally_deliverable,
                timeout=self.timeout,
            ).ascii_email
        checked = ValidatedEmail()
        checked.original = candidate
        local_info = validate_email_local_part(
            local,
            allow_smtputf8=False,
            allow_empty_local=self.allow_empty_local,
            quoted_local_part=False,
            strict=self.strict,
        )
        # Unicode normalisation leaves ASCII as it is, so validate_email's second look at the
        # normalised local part has nothing to find here.
        checked.local_part = local_info["local_part"]
        checked.ascii_local_part = local_info["ascii_local_part"]
        if (
            checked.ascii_local_part is not None
            and checked.ascii_local_part.lower() in CASE_INSENSITIVE_MAILBOX_NAMES
        ):
            checked.ascii_local_part = checked.ascii_local_part.lower()
            checked.local_part = checked.local_part.lower()
        checked.ascii_domain, checked.domain = self._domain(domain)
        checked.normalized = f"{checked.local_part}@{checked.domain}"
        checked.ascii_email = (
            f"{checked.ascii_local_part}@{checked.ascii_domain}"
            if checked.ascii_local_part and checked.ascii_domain
            else None
        )
        validate_email_length(checked)
        if self.check_deliverability and not self.test_environment:
            self._check_deliverable(checked.ascii_domain, checked.domain)
        return checked.ascii_email

    def _domain(self, domain: str) -> tuple[str, str]:
        known = self._domains.get(domain)
        if known is None:
            try:
                info = validate_email_domain_name(
                    domain,
                    test_environment=self.test_environment,
                    globally_deliverable=self.globally_deliverable,
                )
                known = (info["ascii_domain"], info["domain"])
            except EmailNotValidError as error:
                known = error
            self._domains[domain] = known
        if isinstance(known, EmailNotValidError):
            raise known.with_traceback(None)
        return known

    def _check_deliverable(self, ascii_domain: str, domain: str) -> None:
        if ascii_domain not in self._undeliverable:
            # Imported here as email-validator does: dnspython is slow to import.
            from email_validator.deliverability import validate_email_deliverability

            try:
                validate_email_deliverability(ascii_domain, domain, self.timeout)
                self._undeliverable[ascii_domain] = None
            except EmailNotValidError as error:
                self._undeliverable[ascii_domain] = error
        error = self._undeliverable[ascii_domain]
        if error is not None:
            raise error.with_traceback(None)


def email_key(email: str) -> str:
    """The case-insensitive key an address is unique on."""
    return email.casefold()


def email_hash(email: str) -> str:
    """One-way hash kept after erasure to recognise the address without storing it."""
    return hashlib.sha256(email_key(email).encode()).hexdigest()


def is_erased_address(email: str) -> bool:
    return db.session.get(ErasedAddress, email_hash(email)) is not None


def normalise_organisation_name(name: str) -> str:
    """The key organisations are deduplicated on."""
    return search_key(name)


def clean_line(field: str, value: str | None, *, max_length: int, required: bool = False) -> str:
    """A single-line text field, stripped; rejects line breaks, control characters and excess."""
    text = (value or "").strip()
    if _CONTROL_CHARS.search(text):
        raise ValidationFailed(field, _("This field must be a single line of text."))
    if required and not text:
        raise ValidationFailed(field, _("This field is required."))
    if len(text) > max_length:
        raise ValidationFailed(field, _("Use at most %(count)d characters.", count=max_length))
    return text


# Staff's statement of why someone agreed to be contacted, when staff make them active without
# their own confirmation (an import, the back office's add form); kept in the consent log.
BASIS_MAX_CHARS = 500


def consent_basis(raw: str | None, *, needed: str, field: str = "basis") -> str:
    """Staff's statement of why someone agreed to be contacted, on one line (line breaks become
    spaces); ValidationFailed(field, needed) when it says nothing, and the single-line rule's
    errors when it is not one line of at most BASIS_MAX_CHARS characters."""
    basis = " ".join((raw or "").split())
    # Spaces, marks or invisible characters alone state nothing.
    if not any(character.isalnum() for character in basis):
        raise ValidationFailed(field, needed)
    return clean_line(field, basis, max_length=BASIS_MAX_CHARS)


def clean_person_name(field: str, value: str | None, *, required: bool = True) -> str:
    text = clean_line(field, value, max_length=100, required=required)
    if "<" in text or ">" in text:
        raise ValidationFailed(field, _("Names cannot contain the characters < or >."))
    return text


def check_country(field: str, code: str | None, *, required: bool = False) -> str | None:
    if not code:
        if required:
            raise ValidationFailed(field, _("Choose a country."))
        return None
    if code not in iso_codes():
        raise ValidationFailed(field, _("Choose a country from the list."))
    return code


def find_or_create_organisation(
    name: str, stakeholder_type: StakeholderType, country: str | None, website: str | None = None
) -> Organisation:
    """The organisation with this normalised name in this country, created if new."""
    key = normalise_organisation_name(name)
    organisation = db.session.scalar(
        sa.select(Organisation).where(
            Organisation.normalised_name == key,
            Organisation.country.is_(None) if country is None else Organisation.country == country,
        )
    )
    if organisation is None:
        organisation = Organisation(
            name=name,
            normalised_name=key,
            stakeholder_type=stakeholder_type,
            country=country,
            website=website or None,
        )
        db.session.add(organisation)
    elif website and not organisation.website:
        organisation.website = website
    return organisation


def active_topics() -> list[Topic]:
    """Topics offered for subscription, in display order."""
    return list(
        db.session.scalars(sa.select(Topic).where(Topic.active).order_by(Topic.position, Topic.id))
    )


def topics_by_ids(topic_ids: Iterable[int]) -> list[Topic]:
    """Active topics for these ids; unknown or archived ids are a validation error."""
    wanted = check_topics_chosen(topic_ids)
    found = list(
        db.session.scalars(
            sa.select(Topic).where(Topic.id.in_(wanted), Topic.active).order_by(Topic.position)
        )
    )
    if len(found) != len(wanted):
        raise ValidationFailed("topics", _("Choose topics from the list."))
    return found


@dataclass(frozen=True)
class ProfileData:
    """What a contact may state and change about themselves."""

    organisation_name: str
    stakeholder_type: str
    organisation_country: str | None
    given_name: str
    family_name: str
    language: str
    topic_ids: list[int] = field(default_factory=list)
    organisation_website: str | None = None
    salutation: str | None = None
    job_title: str | None = None
    department: str | None = None
    phone: str | None = None
    country: str | None = None


# What sign-up, the preference centre and the directory read from their forms (topics come
# apart, as a list of ids).
PROFILE_FORM_FIELDS = tuple(each.name for each in fields(ProfileData) if each.name != "topic_ids")


@dataclass(frozen=True)
class CleanProfile:
    """ProfileData once checked: stripped text, known codes, the topics it names."""

    organisation_name: str
    stakeholder_type: StakeholderType
    organisation_country: str | None
    website: str
    salutation: str | None
    given_name: str
    family_name: str
    job_title: str
    department: str
    phone: str
    country: str | None
    language: str
    topics: list[Topic]


# The rules of one profile field each: check_profile applies them all to a form, and an
# import (exports.rows.check_row) applies the same ones to every row, collecting every failure.


def check_organisation_name(value: str | None) -> str:
    """The organisation's name: one line, required, at most 200 characters, no < or >."""
    name = clean_line("organisation_name", value, max_length=200, required=True)
    if "<" in name or ">" in name:
        raise ValidationFailed(
            "organisation_name", _("Names cannot contain the characters < or >.")
        )
    return name


def check_stakeholder_type(value: str | None) -> StakeholderType:
    try:
        return StakeholderType(value)
    except ValueError:
        raise ValidationFailed("stakeholder_type", _("Choose a type from the list.")) from None


def check_website(value: str | None) -> str:
    website = clean_line("organisation_website", value, max_length=300)
    if website and not website.startswith(("https://", "http://")):
        raise ValidationFailed(
            "organisation_website", _("Enter a web address starting with https://")
        )
    return website


def check_salutation(value: str | None) -> str | None:
    salutation = value or None
    if salutation is not None and salutation not in SALUTATIONS:
        raise ValidationFailed("salutation", _("Choose a salutation from the list."))
    return salutation


def check_job_title(value: str | None) -> str:
    return clean_line("job_title", value, max_length=200)


def check_phone(value: str | None) -> str:
    phone = clean_line("phone", value, max_length=40)
    if phone and not all(ch.isdigit() or ch in " +-()." for ch in phone):
        raise ValidationFailed(
            "phone", _("Use digits, spaces and + - ( ) . only in the phone number.")
        )
    return phone


def check_department(value: str | None) -> str:
    return clean_line("department", value, max_length=200)


@dataclass(frozen=True)
class DetailField:
    """A line of text a contact may give about themselves, kept as it is on Contact.

    Its rule is the function `check_<name>` of this module, looked up when it runs, so a rule
    changed here is changed for every path at once."""

    name: str  # of Contact's column, ProfileData's field and the forms' field
    label: str  # as staff read it (English): import problems and mapping, export headers
    # Other names an import recognises for its column (the label is one), in the three
    # languages, as people write them.
    import_names: tuple[str, ...] = ()
    export_width: int = 20  # characters, for XLSX
    # Whether an export has its column unless staff choose otherwise; a new field's is not,
    # so the files people already take from us keep their columns where they were.
    export_default: bool = True

    def check(self, value: str | None) -> str:
        """`value` as its rule leaves it; ValidationFailed(name) when the rule refuses it."""
        return globals()[f"check_{self.name}"](value)


# The contact's details: every path that reads, checks, stores, audits, exports or erases a
# contact goes through this list, so a new one is a column, a rule and a line here (and the
# forms and templates that show it).
DETAIL_FIELDS = (
    DetailField(
        "job_title",
        "Job title",
        import_names=("position", "function", "job", "fonction", "poste", "titre", "должность"),
        export_width=28,
    ),
    DetailField(
        "department",
        "Department",
        import_names=(
            "Unit", "Division", "Département", "Service", "Unité", "Отдел", "Подразделение",
        ),
        export_width=24,
        export_default=False,
    ),
    DetailField(
        "phone",
        "Phone",
        import_names=(
            "telephone", "tel", "phone number", "telephone number", "mobile",
            "numero de telephone", "телефон", "номер телефона",
        ),
        export_width=18,
    ),
)  # fmt: skip


def check_language(value: str | None) -> str:
    if value not in LANGUAGES:
        raise ValidationFailed("language", _("Choose a language from the list."))
    return value


def check_topics_chosen(topic_ids: Iterable[int]) -> set[int]:
    """The chosen topic ids; ValidationFailed when there are none."""
    chosen = set(topic_ids)
    if not chosen:
        raise ValidationFailed("topics", _("Choose at least one topic."))
    return chosen


def check_profile(data: ProfileData) -> CleanProfile:
    """Validate `data` in full as apply_profile does, changing nothing; ValidationFailed if not.

    A sign-up for an address already on file is checked here and kept until its owner
    confirms, so nothing stored about them changes before."""
    organisation_name = check_organisation_name(data.organisation_name)
    stakeholder_type = check_stakeholder_type(data.stakeholder_type)
    organisation_country = check_country(
        "organisation_country", data.organisation_country, required=True
    )
    website = check_website(data.organisation_website)
    salutation = check_salutation(data.salutation)
    given_name = clean_person_name("given_name", data.given_name)
    family_name = clean_person_name("family_name", data.family_name)
    details = {detail.name: detail.check(getattr(data, detail.name)) for detail in DETAIL_FIELDS}
    country = check_country("country", data.country) or organisation_country
    language = check_language(data.language)
    return CleanProfile(
        organisation_name=organisation_name,
        stakeholder_type=stakeholder_type,
        organisation_country=organisation_country,
        website=website,
        salutation=salutation,
        given_name=given_name,
        family_name=family_name,
        **details,
        country=country,
        language=language,
        topics=topics_by_ids(data.topic_ids),
    )


def apply_profile(contact: Contact, data: ProfileData) -> None:
    """Validate `data` in full, then copy it onto `contact`; raises before changing anything.

    The one set of rules for sign-up, self-service preferences and the back office."""
    profile = check_profile(data)
    # Archived topics are no longer offered, so leaving them out is not a choice to drop them.
    archived = [topic for topic in contact.topics if not topic.active]

    contact.organisation = find_or_create_organisation(
        profile.organisation_name,
        profile.stakeholder_type,
        profile.organisation_country,
        profile.website or None,
    )
    contact.salutation = profile.salutation
    contact.given_name = profile.given_name
    contact.family_name = profile.family_name
    for detail in DETAIL_FIELDS:
        setattr(contact, detail.name, getattr(profile, detail.name) or None)
    contact.country = profile.country
    contact.language = profile.language
    contact.topics = [*profile.topics, *archived]


def new_link_secret() -> str:
    return secrets.token_urlsafe(32)


# Events staff record about someone rather than the person's own acts: they saw no privacy
# notice, so none is recorded with these.
STAFF_CONSENT_ACTIONS = frozenset({ConsentAction.IMPORTED, ConsentAction.ADDED_BY_STAFF})


def record_consent(
    contact: Contact, action: ConsentAction, source: str, detail: str | None = None
) -> ConsentEvent:
    """Add an event to the contact's consent log, under the current privacy notice when it is
    the person's own act."""
    event = ConsentEvent(contact=contact, **consent_values(action, source, detail))
    db.session.add(event)
    return event


def consent_values(action: ConsentAction, source: str, detail: str | None = None) -> dict[str, Any]:
    """A consent event's own values (an import inserts them in bulk, record_consent one at a
    time): the privacy notice's version only when it is the person's own act."""
    return {
        "action": action,
        "wording_version": None if action in STAFF_CONSENT_ACTIONS else PRIVACY_NOTICE_VERSION,
        "source": source,
        "detail": detail,
    }


def describe_subscription(contact: Contact) -> str:
    """A short, personal-data-free summary for the consent log."""
    return subscription_summary((topic.slug for topic in contact.topics), contact.language)


def subscription_summary(topic_slugs: Iterable[str], language: str) -> str:
    """describe_subscription for topics and a language not (yet) on a Contact."""
    return f"topics: {', '.join(topic_slugs)}; language: {language}"


# The fields of a contact an audit entry records as they are; status, organisation and topics
# are recorded by audit_snapshot as plain values.
AUDITED_FIELDS = (
    "salutation",
    "given_name",
    "family_name",
    "email",
    *(detail.name for detail in DETAIL_FIELDS),
    "country",
    "language",
)


def audit_snapshot(contact: Contact) -> dict[str, Any]:
    """The audited fields of a contact: plain values, topics as sorted slugs."""
    organisation = contact.organisation
    return snapshot_values(
        {name: getattr(contact, name) for name in AUDITED_FIELDS},
        status=contact.status,
        organisation=organisation.name if organisation else None,
        organisation_country=organisation.country if organisation else None,
        topic_slugs=(topic.slug for topic in contact.topics),
    )


def snapshot_values(
    values: Mapping[str, Any],
    *,
    status: ContactStatus | None,
    organisation: str | None,
    organisation_country: str | None,
    topic_slugs: Iterable[str],
) -> dict[str, Any]:
    """audit_snapshot from the values of the AUDITED_FIELDS (a Contact's, a database row's,
    an imported row's) and the rest given."""
    return {
        **{name: values[name] for name in AUDITED_FIELDS},
        "status": status.value if status else None,
        "organisation": organisation,
        "organisation_country": organisation_country,
        "topics": sorted(topic_slugs),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def contact_data_export(contact: Contact) -> dict[str, Any]:
    """Everything stored about a contact, as one JSON-ready document."""
    organisation = contact.organisation
    return {
        "exported_at": utcnow().isoformat(),
        "contact": {
            "salutation": contact.salutation,
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "email": contact.email,
            **{detail.name: getattr(contact, detail.name) for detail in DETAIL_FIELDS},
            "country": contact.country,
            "language": contact.language,
            "status": contact.status.value,
            "created_at": _iso(contact.created_at),
            "confirmed_at": _iso(contact.confirmed_at),
            "updated_at": _iso(contact.updated_at),
        },
        "organisation": None
        if organisation is None
        else {
            "name": organisation.name,
            "stakeholder_type": organisation.stakeholder_type.value,
            "country": organisation.country,
            "website": organisation.website,
        },
        "topics": [{"slug": topic.slug, "label": topic.label_en} for topic in contact.topics],
        "consent_log": [
            {
                "at": _iso(event.at),
                "action": event.action.value,
                "wording_version": event.wording_version,
                "source": event.source,
                "detail": event.detail,
            }
            for event in contact.consent_events
        ],
    }


# What the audit log still says about an erased contact: the non-identifying facts the consent
# log keeps too. Every other field is blanked, including ones added later: failing safe.
AUDIT_FIELDS_KEPT_AFTER_ERASURE = frozenset({"status", "language", "topics"})


def _erase_from_audit_log(contact: Contact) -> set[str]:
    """Blank the contact's data in the audit log, the searches staff typed to find them
    included; returns every address it had."""
    organisation = contact.organisation
    found = audit.erase_person(
        "contact",
        contact.id,
        # The fields whose values summaries quote ("Edited Ana Silva", "Organisation X merged").
        quoted={
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "email": contact.email,
            **{detail.name: getattr(contact, detail.name) for detail in DETAIL_FIELDS},
            "organisation": organisation.name if organisation else None,
        },
        kept=AUDIT_FIELDS_KEPT_AFTER_ERASURE,
    )
    for address in found["email"]:
        audit.erase_address(address, "contact")
    # What staff typed into directory searches to find them, kept in the filters of exports
    # and bulk actions: any of their names, or the part of an address before the @-sign.
    audit.erase_searched_names(
        [
            *found["given_name"],
            *found["family_name"],
            *(address.partition("@")[0] for address in found["email"]),
        ],
        "contact",
    )
    return found["email"]


def _erase_from_delivery_replies(contact_id: int, addresses: Iterable[str]) -> None:
    """Blank the addresses in mail servers' replies to this contact's deliveries
    ("550 5.1.1 <ana@example.org>: Recipient address rejected")."""
    for address in addresses:
        replies = db.session.scalars(
            sa.select(Delivery).where(
                Delivery.contact_id == contact_id,
                sa.func.lower(Delivery.last_reply).contains(address.casefold(), autoescape=True),
            )
        )
        for delivery in replies:
            delivery.last_reply = re.sub(
                re.escape(address), audit.ERASED, delivery.last_reply, flags=re.IGNORECASE
            )


# In a staff consent event's detail ("basis: <statement>; status: ...; topics: ...; language:
# ..."), the statement: everything before the generated tail, whatever the statement holds.
_STATEMENT_IN_DETAIL = re.compile(r"^basis: .*(?=; status: \w+; topics: [^;]*; language: \w*$)")


def _erase_consent_statements(contact: Contact) -> None:
    """Blank what staff wrote about the contact in their consent log: free text about one
    person, which may name them. Who added them, how, and with what status stay."""
    for event in contact.consent_events:
        if event.action in STAFF_CONSENT_ACTIONS and event.detail:
            event.detail = _STATEMENT_IN_DETAIL.sub("basis: (erased)", event.detail)


def erase_contact(contact: Contact, source: str) -> None:
    """Remove a contact's personal data for good, keeping only a hash of the address; what the
    audit log and mail servers' replies quote of it is blanked in the same transaction, and
    once it commits, their mail in the outbox and the import uploads holding them are deleted
    (_forget_erased)."""
    if contact.status is ContactStatus.ERASED:
        return
    # Before the values are cleared: they are what to look for.
    addresses = _erase_from_audit_log(contact)
    _erase_from_delivery_replies(contact.id, addresses)
    _erase_consent_statements(contact)
    if contact.email and not is_erased_address(contact.email):
        db.session.add(ErasedAddress(email_hash=email_hash(contact.email)))
    # Details proposed by sign-ups and waiting for this address's confirmation are theirs too.
    db.session.execute(sa.delete(SignupRequest).where(SignupRequest.contact_id == contact.id))
    contact.salutation = None
    contact.given_name = ""
    contact.family_name = ""
    contact.email = None
    contact.email_key = None
    for detail in DETAIL_FIELDS:
        setattr(contact, detail.name, None)
    contact.country = None
    contact.organisation = None
    contact.topics = []
    contact.status = ContactStatus.ERASED
    contact.link_secret = new_link_secret()
    record_consent(contact, ConsentAction.ERASE, source)
    _forget_after_commit(addresses)


# Addresses erased in the current transaction, whose files go once it commits.
_ERASED = "jeg_contacts.erased_addresses"


def _forget_after_commit(addresses: Iterable[str]) -> None:
    session = db.session()
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_ERASED, set()).update(addresses)


@sa.event.listens_for(Session, "after_commit")
def _forget_erased(session: Session) -> None:
    """Once an erasure is durable (files follow the data, never lead it): delete the mail
    kept for the person and the import uploads holding them, then rid SQLite's files of the
    old pages."""
    addresses = session.info.pop(_ERASED, None)
    if addresses is None:
        return
    # Here rather than at the top: exports builds on contacts, not the other way round.
    from jeg_contacts.privacy.erasure import discard_uploads_holding

    steps = {
        "the outbox": lambda: forget_mail_to(addresses),
        "the import uploads": lambda: discard_uploads_holding(addresses),
        "SQLite's write-ahead log": _checkpoint_sqlite,
    }
    for where, step in steps.items():
        try:
            step()
        except Exception:
            # The erasure is committed; a 500 would tell the person it failed. The log says
            # what is left to clear by hand.
            current_app.logger.exception("erasure: %s could not be cleared", where)


@sa.event.listens_for(Session, "after_soft_rollback")
def _keep_files(session: Session, previous_transaction: object) -> None:
    session.info.pop(_ERASED, None)


def _checkpoint_sqlite() -> None:
    """Copy SQLite's write-ahead log into the database file and empty it. The log keeps the
    pages as they were before the erasure until a checkpoint; secure_delete (set on every
    connection) zeroes what the new pages no longer hold."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        busy, _frames, _copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        # A reader held an older snapshot past the busy timeout; the next checkpoint (SQLite
        # makes one every 1,000 pages) copies the pages, and the log is reused from its start.
        current_app.logger.warning("erasure: the SQLite write-ahead log could not be emptied")


def profile_values(contact: Contact) -> dict[str, Any]:
    """A contact's current ProfileData fields, as form data (topics: the active ones' ids)."""
    organisation = contact.organisation
    return {
        "organisation_name": organisation.name if organisation else "",
        "stakeholder_type": organisation.stakeholder_type.value if organisation else "",
        "organisation_country": organisation.country if organisation else None,
        "organisation_website": organisation.website if organisation else "",
        "salutation": contact.salutation or "",
        "given_name": contact.given_name,
        "family_name": contact.family_name,
        **{detail.name: getattr(contact, detail.name) or "" for detail in DETAIL_FIELDS},
        "country": contact.country,
        "language": contact.language,
        "topics": [topic.id for topic in contact.topics if topic.active],
    }
