"""Text as the whole application compares and checks it: search keys, email addresses,
single lines. Pure helpers with no feature behind them, so every room may use them."""

import re
import unicodedata

import email_validator
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from email_validator.syntax import (
    validate_email_domain_name,
    validate_email_length,
    validate_email_local_part,
)
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.validators import ValidationError

from jeg_contacts.errors import ValidationFailed

# The columns that hold search keys are this long. NFKD can make a name several times longer
# (a Hangul syllable becomes three letters, one Arabic ligature eighteen), so keys are cut here.
SEARCH_KEY_MAX_LENGTH = 200


def search_key(text: str) -> str:
    """Casefolded, accent-free, single-spaced: how names are compared and searched."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    without_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(without_accents.split())[:SEARCH_KEY_MAX_LENGTH].rstrip()


CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _email_candidate(raw: str) -> str:
    """The address as typed, stripped; ValidationFailed when empty or over several lines."""
    candidate = (raw or "").strip()
    if not candidate:
        raise ValidationFailed("email", _("Enter your email address."))
    if CONTROL_CHARS.search(candidate):
        raise ValidationFailed("email", _("The email address must be on one line."))
    return candidate


def _invalid_email(candidate: str) -> ValidationFailed:
    local = candidate.rpartition("@")[0]
    if local and not local.isascii():
        # Such an address needs SMTPUTF8 at every mail server on its way, and many do not
        # offer it: a message to it could be lost without anyone knowing. The domain may be
        # in any script (it is stored and sent in its ASCII, IDNA form).
        return ValidationFailed(
            "email",
            _(
                "Mail servers do not all accept letters such as ä, é or я before the @-sign. "
                "Give an address with only unaccented Latin letters, digits and . _ - + "
                "before the @-sign (after it, any script is fine)."
            ),
        )
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
        raise _invalid_email(candidate) from None
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
    one import. tests/test_text.py checks it against normalise_email."""

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
            raise _invalid_email(candidate) from None

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


def email_address(form: FlaskForm, field: Field) -> None:
    """WTForms validator: an address normalise_email accepts, so that a mistyped address is
    reported with the form's other errors (the service checks it again when storing)."""
    if field.data and not CONTROL_CHARS.search(field.data):  # single_line reports those
        try:
            normalise_email(field.data)
        except ValidationFailed as error:
            raise ValidationError(error.message) from None


def single_line(form: FlaskForm, field: Field) -> None:
    """WTForms validator: the field's text holds no line break."""
    if field.data and any(ch in field.data for ch in "\r\n\x00\u2028\u2029"):
        raise ValidationError(_l("This field must be a single line of text."))
