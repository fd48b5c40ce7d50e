"""vCard 4.0 (RFC 6350) writing: escaping, line folding and one card per contact.

Written by hand rather than with a library: the format is small, and a writer of our own keeps
exports streaming one card at a time.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

MAX_LINE_OCTETS = 75  # RFC 6350 section 3.2, not counting the CRLF


def escape_text(value: str) -> str:
    """A text value with backslash, comma, semicolon and line breaks escaped (section 3.4)."""
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """A content line split into physical lines of at most 75 octets, each ending in CRLF.

    Continuation lines start with a space, which counts towards their 75 octets; a multi-octet
    UTF-8 character is never split."""
    encoded = line.encode()
    if len(encoded) <= MAX_LINE_OCTETS:
        return line + "\r\n"
    pieces = []
    start, limit = 0, MAX_LINE_OCTETS
    while start < len(encoded):
        end = min(start + limit, len(encoded))
        while end < len(encoded) and encoded[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        pieces.append(encoded[start:end].decode())
        start, limit = end, MAX_LINE_OCTETS - 1
    return "\r\n ".join(pieces) + "\r\n"


def _compound(*components: str | None) -> str:
    return ";".join(escape_text(component or "") for component in components)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def card(
    *,
    uid: str,
    given_name: str,
    family_name: str,
    email: str | None = None,
    salutation: str | None = None,
    job_title: str | None = None,
    phone: str | None = None,
    organisation: str | None = None,
    website: str | None = None,
    country_name: str | None = None,
    language: str | None = None,
    categories: Sequence[str] = (),
    revised: datetime | None = None,
) -> str:
    """One vCard 4.0 with the fields a contact list carries, as folded CRLF lines."""
    full_name = f"{given_name} {family_name}".strip() or email or "Unnamed contact"
    lines = [
        "BEGIN:VCARD",
        "VERSION:4.0",
        "KIND:individual",
        f"UID:{uid}",
        f"FN:{escape_text(full_name)}",
        # N: family; given; additional names; honorific prefixes; honorific suffixes
        f"N:{_compound(family_name, given_name, '', salutation, '')}",
    ]
    if organisation:
        lines.append(f"ORG:{escape_text(organisation)}")
    if job_title:
        lines.append(f"TITLE:{escape_text(job_title)}")
    if email:
        lines.append(f"EMAIL;TYPE=work:{escape_text(email)}")
    if phone:
        # Numbers are kept as typed, so as text: a tel: URI would need a normalised number.
        lines.append(f"TEL;VALUE=text;TYPE=work,voice:{escape_text(phone)}")
    if country_name:
        # ADR: PO box; extended address; street; locality; region; postal code; country
        lines.append(f"ADR;TYPE=work:{_compound('', '', '', '', '', '', country_name)}")
    if website:
        lines.append(f"URL;TYPE=work:{website}")
    if language:
        lines.append(f"LANG;PREF=1:{language}")
    if categories:
        lines.append("CATEGORIES:" + ",".join(escape_text(category) for category in categories))
    if revised is not None:
        lines.append(f"REV:{_timestamp(revised)}")
    lines.append("END:VCARD")
    return "".join(fold(line) for line in lines)
