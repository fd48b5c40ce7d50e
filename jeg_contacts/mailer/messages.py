"""Email messages: multipart text + HTML, safe headers, rendered from templates/email/."""

import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale

from jeg_contacts.extensions import utcnow

# Line breaks of every kind, NUL and other controls: any of them in a header value could end it.
_UNSAFE_HEADER_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


class HeaderInjectionError(ValueError):
    """A serialised message carries header lines nobody set."""


def clean_header_text(value: str) -> str:
    """Make user-supplied text safe for a header value: one line, no encoded words."""
    value = _UNSAFE_HEADER_CHARS.sub(" ", value)
    # Python before 3.11.10 (CVE-2024-6923) decodes an RFC 2047 word such as "=?UTF-8?Q?=0A?="
    # in a header value into a raw newline and writes it out unfolded; breaking the "=?" opener
    # means no encoded word can be smuggled in.
    value = value.replace("=?", "= ?")
    return " ".join(value.split())


def _address(name: str, addr_spec: str) -> Address:
    return Address(display_name=clean_header_text(name), addr_spec=clean_header_text(addr_spec))


def sender_address() -> Address:
    name, addr_spec = parseaddr(current_app.config["MAIL_FROM"])
    return _address(name, addr_spec)


def build_message(
    *,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
    html: str,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message with Message-ID, Date and sanitised headers."""
    sender = sender_address()
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = clean_header_text(subject)
    message["From"] = sender
    message["To"] = _address(to_name, to_email)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.domain or "localhost")
    for name, value in (extra_headers or {}).items():
        message[name] = clean_header_text(value)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def serialise(message: EmailMessage) -> bytes:
    """The wire form of `message`, refused if its header block holds lines nobody set."""
    raw = message.as_bytes(policy=policy.SMTP)
    # Receivers end a line at CRLF, bare LF or bare CR alike, so split the way they would.
    written = []
    for line in re.split(rb"\r\n|\r|\n", raw):
        if not line:
            break
        if line[:1] not in (b" ", b"\t"):
            written.append(line.split(b":", 1)[0].decode("ascii", "replace").lower())
    expected = [name.lower() for name in message]
    if sorted(written) != sorted(expected):
        raise HeaderInjectionError(f"header lines {written} differ from those set {expected}")
    return raw


def render_email(template: str, language: str, **context: object) -> tuple[str, str]:
    """Render templates/email/<template>.txt and .html in `language`."""
    with force_locale(language):
        text = render_template(f"email/{template}.txt", language=language, **context)
        html = render_template(f"email/{template}.html", language=language, **context)
    return text, html


def external_url(endpoint: str, **values: object) -> str:
    """An absolute link for emails: BASE_URL plus the endpoint's path (works outside requests)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["BASE_URL"] + path
