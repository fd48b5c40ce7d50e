"""Email messages: multipart text + HTML, safe headers, rendered from templates/email/."""

import base64
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.errors import MessageError
from email.headerregistry import BaseHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, make_msgid, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale

from jeg_contacts.extensions import utcnow

# Line breaks of every kind, NUL and other controls: any of them in a header value could end it.
_UNSAFE_HEADER_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"  # RFC 5322 atext
# A display name of atext words needs neither quotes nor encoding, and folds between words.
_ATEXT_WORD = re.compile(f"[{_ATEXT}]{{1,60}}")
# An address as normalise_email gives it (a dot-atom on either side of one @): nothing in it
# can quote, comment, separate or end an address.
_ADDR_SPEC = re.compile(f"[.{_ATEXT}]+@[.{_ATEXT}]+")
_LINE_LENGTH = 76
# UTF-8 bytes per encoded word: "=?utf-8?b?" + 52 characters of base64 + "?=" is 64, within
# RFC 2047's 75, and leaves room for a header name on the first line within its 76.
_ENCODED_WORD_BYTES = 39


class MessageBuildError(ValueError):
    """A message that cannot be written safely: it must not be promised to anyone."""


class HeaderInjectionError(MessageBuildError):
    """A serialised message carries header lines nobody set."""


def clean_header_text(value: str) -> str:
    """Make user-supplied text safe for a header value: one line, no encoded words."""
    value = _UNSAFE_HEADER_CHARS.sub(" ", value)
    # Python before 3.11.10 (CVE-2024-6923) decodes an RFC 2047 word such as "=?UTF-8?Q?=0A?="
    # in a header value into a raw newline and writes it out unfolded; breaking the "=?" opener
    # means no encoded word can be smuggled in.
    value = value.replace("=?", "= ?")
    return " ".join(value.split())


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 encoded words (UTF-8, base64), each short enough for a line."""
    chunks, chunk, size = [], "", 0
    for char in text:
        length = len(char.encode("utf-8", "replace"))
        while size + length > _ENCODED_WORD_BYTES:
            # Break after a space where there is one: a reader that keeps the folding space
            # between two encoded words (Python 3.11's does) then shows a doubled space
            # rather than a word cut in two.
            cut = chunk.rfind(" ") + 1 or len(chunk)
            chunks.append(chunk[:cut])
            chunk = chunk[cut:]
            size = len(chunk.encode("utf-8", "replace"))
        chunk += char
        size += length
    chunks.append(chunk)
    return [
        "=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8", "replace")).decode("ascii") + "?="
        for chunk in chunks
    ]


def address_lines(header: str, display_name: str, addr_spec: str) -> list[str]:
    """The lines of an address header (`header`: its name) as written on the wire, which any
    reader parses as exactly one address, `addr_spec`, with `display_name` as its name.

    A name of plain words goes as it is; any other (commas, quotes, @, other scripts, a word
    too long for a line) as encoded words, never as a quoted string: Python 3.11's folding
    drops the quotes of a long one, and each comma then starts another address. Raises
    MessageBuildError for an address that no header could carry."""
    if not _ADDR_SPEC.fullmatch(addr_spec):
        raise MessageBuildError(f"{header}: not an address that a header can carry")
    name = clean_header_text(display_name)
    words = name.split(" ") if name else []
    if not all(_ATEXT_WORD.fullmatch(word) for word in words):
        words = _encoded_words(name)
    return _folded(header, [*words, f"<{addr_spec}>" if words else addr_spec])


def text_header_lines(header: str, value: str) -> list[str]:
    """The lines of a text header such as Subject (`header`: its name) as written on the
    wire: every line within 76 characters and every encoded word within RFC 2047's 75.

    ASCII words that fit a line go as they are; any other text as encoded words (Python's
    own folding puts the first encoded word after the header's name past 78 characters)."""
    text = clean_header_text(value)
    words = text.split(" ") if text else []
    if not text.isascii() or not all(len(word) <= 60 for word in words):
        words = _encoded_words(text)
    return _folded(header, words)


def _folded(header: str, tokens: list[str]) -> list[str]:
    """`tokens` after `header`'s name, a space between each, a new line where one would pass
    the line length (a token is never cut)."""
    lines = [f"{header}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > _LINE_LENGTH and lines[-1].strip() != f"{header}:":
            lines.append("")
        lines[-1] += " " + token
    return lines


class _Prefolded:
    """A header object written exactly as `address_lines` or `text_header_lines` folded it
    (the email package's EmailPolicy calls `fold` on any header object it is given)."""

    lines: list[str]

    def fold(self, *, policy: Policy) -> str:
        return policy.linesep.join(self.lines) + policy.linesep


@functools.cache
def _prefolded_header_class(header: str) -> type[BaseHeader]:
    return type(f"Prefolded{header}Header", (_Prefolded, policy.SMTP.header_factory[header]), {})


def _prefolded(header: str, lines: list[str]) -> BaseHeader:
    """A header for EmailMessage: parsed like any other (`.addresses` of an address header),
    written as `lines` have it."""
    value = " ".join(line.strip() for line in lines)[len(header) + 1 :].strip()
    prefolded = _prefolded_header_class(header)(header, value)
    prefolded.lines = lines
    return prefolded


def _sender() -> tuple[str, str]:
    return parseaddr(current_app.config["MAIL_FROM"])


def sender_addr_spec() -> str:
    """The address mail is sent from (for the SMTP envelope)."""
    return _sender()[1]


def _message_id_domain() -> str:
    return _sender()[1].rpartition("@")[2] or "localhost"


def build_message(
    *,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
    html: str,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message with Message-ID, Date and sanitised headers; raises
    MessageBuildError if it cannot be written safely."""
    try:
        message = EmailMessage(policy=policy.SMTP)
        message["Subject"] = _prefolded("Subject", text_header_lines("Subject", subject))
        message["From"] = _prefolded("From", address_lines("From", *_sender()))
        message["To"] = _prefolded("To", address_lines("To", to_name, to_email))
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=_message_id_domain())
        for name, value in (extra_headers or {}).items():
            message[name] = clean_header_text(value)
        message.set_content(text)
        message.add_alternative(html, subtype="html")
    except MessageBuildError:
        raise
    except (ValueError, MessageError) as error:
        raise MessageBuildError(f"message not built: {error.__class__.__name__}") from error
    return message


# Receivers end a line at CRLF, bare LF or bare CR alike, so lines are split the way they are.
_LINE = re.compile(rb"([^\r\n]*)(?:\r\n|\r|\n|$)")


def check_header_lines(raw: bytes, names: Iterable[str]) -> None:
    """Refuse `raw` (a message, or its header block) unless its header lines are exactly
    `names`: a line nobody set means a value smuggled a line break in."""
    written = []
    # Line by line up to the first empty one only: the body can be long, the head is short.
    for match in _LINE.finditer(raw):
        line = match.group(1)
        if not line:
            break
        if line[:1] not in (b" ", b"\t"):
            written.append(line.split(b":", 1)[0].decode("ascii", "replace").lower())
    expected = [name.lower() for name in names]
    if sorted(written) != sorted(expected):
        raise HeaderInjectionError(f"header lines {written} differ from those set {expected}")


_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True, slots=True)
class ReadyMessage:
    """A message whose header lines passed `check_header_lines`: the only kind the SMTP
    session and the outbox take, so transactional and bulk mail get the same check."""

    message_id: str
    raw: bytes  # CRLF line ends, as the outbox stores it
    data: bytes  # the DATA payload: dot-stuffed and terminated, as smtplib's `data()` sends it
    eight_bit: bool = False  # bytes over 127 anywhere: the relay must take BODY=8BITMIME
    utf8_headers: bool = False  # raw UTF-8 in the header block: the relay must take SMTPUTF8

    @classmethod
    def checked(cls, raw: bytes, header_names: Iterable[str], message_id: str) -> "ReadyMessage":
        """`raw` made ready to send; HeaderInjectionError unless its header lines are exactly
        `header_names`."""
        check_header_lines(raw, header_names)
        data = _LEADING_DOT.sub(b"..", raw)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        head = raw.split(b"\r\n\r\n", 1)[0]
        return cls(message_id, raw, data + b".\r\n", not raw.isascii(), not head.isascii())


def ready(message: EmailMessage) -> ReadyMessage:
    """`message` written out and checked (MessageBuildError if it cannot be sent safely)."""
    try:
        raw = message.as_bytes(policy=policy.SMTP)
    except (ValueError, MessageError) as error:
        raise MessageBuildError(f"message not written: {error.__class__.__name__}") from error
    return ReadyMessage.checked(raw, message.keys(), str(message.get("Message-ID", "")))


def serialise(message: EmailMessage) -> bytes:
    """The wire form of `message`, refused if its header block holds lines nobody set."""
    return ready(message).raw


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
