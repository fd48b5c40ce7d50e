"""Building and serialising messages: structure, international text, header injection."""

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from flask import Flask

from jeg_contacts.extensions import db
from jeg_contacts.mailer.messages import (
    HeaderInjectionError,
    build_message,
    clean_header_text,
    serialise,
)
from tests.conftest import html_body, make_app, text_body

INJECTION_PAYLOADS = [
    "x\r\nBcc: evil@example.org",
    "x\nBcc: evil@example.org",
    "x\rBcc: evil@example.org",
    "x\x00Bcc: evil@example.org",
    "x\u2028Bcc: evil@example.org",
    "x\u2029Bcc: evil@example.org",
    "=?UTF-8?Q?=0A?=Bcc: evil@example.org",
    "=?UTF-8?Q?=0D=0A?=Bcc: evil@example.org",
    "Zoë =?utf-8?b?Cg==?=Bcc: evil@example.org",
    "trailing newline\n",
]

# Encoded words that, on Python before the CVE-2024-6923 fix, serialise to a raw line break.
ENCODED_LINE_BREAKS = [
    "=?UTF-8?Q?=0A?=Bcc: evil@example.org",
    "=?UTF-8?Q?=0D=0A?=Bcc: evil@example.org",
    "=?UTF-8?Q?=0D?=Bcc: evil@example.org",
    "=?UTF-8?Q?=0D=0A=0D=0A?=Bcc: evil@example.org",
]


def sample_message(**overrides: object) -> EmailMessage:
    fields: dict[str, object] = {
        "to_email": "zoe.mueller@example.org",
        "to_name": "Zoë Müller",
        "subject": "Please confirm your subscription",
        "text": "Open http://jeg.test/confirm/abc to confirm.",
        "html": '<p>Open <a href="http://jeg.test/confirm/abc">this link</a> to confirm.</p>',
    }
    fields.update(overrides)
    return build_message(**fields)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    """Read raw bytes the way a receiving server or mail client would."""
    return BytesParser(policy=policy.default).parsebytes(raw)


def receiver_sees_other_headers(message: EmailMessage) -> bool:
    """Whether the plain wire form, unchecked, reads back with headers other than those set."""
    return sorted(parse(message.as_bytes()).keys()) != sorted(message.keys())


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def test_message_has_text_and_html_alternatives(app: Flask) -> None:
    with app.app_context():
        message = parse(serialise(sample_message()))

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert "http://jeg.test/confirm/abc" in text_body(message)
    assert 'href="http://jeg.test/confirm/abc"' in html_body(message)


def test_message_carries_from_to_subject_date_and_message_id(app: Flask) -> None:
    with app.app_context():
        message = parse(serialise(sample_message()))

    assert message["From"].addresses[0] == Address("JEG secretariat", "jeg", "unece.test")
    assert message["To"].addresses[0] == Address("Zoë Müller", "zoe.mueller", "example.org")
    assert message["Subject"] == "Please confirm your subscription"
    sent_at = parsedate_to_datetime(message["Date"])
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)


def test_message_id_uses_the_domain_of_mail_from(tmp_path: Path) -> None:
    app = make_app(tmp_path, MAIL_FROM="Secretariat <noreply@jeg.unece.org>")
    with app.app_context():
        first = parse(serialise(sample_message()))
        second = parse(serialise(sample_message()))
        db.engine.dispose()

    assert first["Message-ID"].startswith("<")
    assert first["Message-ID"].endswith("@jeg.unece.org>")
    assert first["Message-ID"] != second["Message-ID"]


@pytest.mark.parametrize(
    ("to_name", "subject"),
    [
        ("Zoë Müller", "Bestätigen Sie Ihr Abonnement"),
        ("Жанна Иванова", "Подтвердите подписку на новости Совместной группы экспертов"),
    ],
)
def test_non_ascii_names_and_subjects_are_encoded_words_that_decode_back(
    app: Flask, to_name: str, subject: str
) -> None:
    with app.app_context():
        raw = serialise(sample_message(to_name=to_name, subject=subject))

    headers = header_block(raw)
    headers.decode("ascii")  # raises if any header byte is not ASCII
    assert b"=?utf-8?" in headers.lower()
    message = parse(raw)
    assert message["To"].addresses[0].display_name == to_name
    assert message["Subject"] == subject


def test_non_ascii_sender_name_is_encoded_and_decodes_back(tmp_path: Path) -> None:
    app = make_app(tmp_path, MAIL_FROM="Секретариат JEG <jeg@unece.test>")
    with app.app_context():
        raw = serialise(sample_message())
        db.engine.dispose()

    header_block(raw).decode("ascii")
    assert parse(raw)["From"].addresses[0] == Address("Секретариат JEG", "jeg", "unece.test")


@pytest.mark.parametrize("payload", INJECTION_PAYLOADS)
@pytest.mark.parametrize("slot", ["display name", "subject", "extra header"])
def test_header_injection_attempts_add_no_header(app: Flask, slot: str, payload: str) -> None:
    overrides: dict[str, object] = {
        "display name": {"to_name": payload},
        "subject": {"subject": payload},
        "extra header": {"extra_headers": {"X-Contact-Note": payload}},
    }[slot]
    with app.app_context():
        message = sample_message(**overrides)
        raw = serialise(message)

    received = parse(raw)
    assert "Bcc" not in received
    assert len(received.get_all("To")) == 1
    assert sorted(received.keys()) == sorted(message.keys())
    for value in received.values():
        assert "\n" not in str(value)
        assert "\r" not in str(value)


@pytest.mark.parametrize(
    ("raw_text", "clean"),
    [
        ("x\r\nBcc: evil@example.org", "x Bcc: evil@example.org"),
        ("a\x00b\x1fc\x7fd\x85e\u2028f\u2029g", "a b c d e f g"),
        ("=?UTF-8?Q?=0A?=", "= ?UTF-8?Q?=0A?="),
        ("  spaced \t out\n", "spaced out"),
        ("Zoë Müller", "Zoë Müller"),
    ],
)
def test_clean_header_text_keeps_one_line_without_encoded_words(raw_text: str, clean: str) -> None:
    assert clean_header_text(raw_text) == clean


@pytest.mark.parametrize("payload", ENCODED_LINE_BREAKS)
def test_serialise_refuses_a_header_that_bypassed_cleaning(payload: str) -> None:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "jeg@unece.test"
    message["To"] = "zoe.mueller@example.org"
    message["Subject"] = payload  # deliberately not passed through clean_header_text
    message.set_content("Hello")
    if not receiver_sees_other_headers(message):
        pytest.skip("this Python encodes the line break itself (CVE-2024-6923 is fixed)")

    with pytest.raises(HeaderInjectionError):
        serialise(message)


def test_serialise_refuses_a_display_name_that_bypassed_cleaning() -> None:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "jeg@unece.test"
    message["To"] = Address("=?UTF-8?Q?=0D=0A?=Bcc: evil@example.org", "zoe", "example.org")
    message["Subject"] = "Hello"
    message.set_content("Hello")
    if not receiver_sees_other_headers(message):
        pytest.skip("this Python encodes the line break itself (CVE-2024-6923 is fixed)")

    with pytest.raises(HeaderInjectionError):
        serialise(message)


# -- header lengths (RFC 5322: lines within 78; RFC 2047: encoded words within 75) ----------

LONG_SUBJECTS = [
    "Приглашение на семинар Совместной группы экспертов по водным ресурсам и промышленным "
    "авариям: безопасность хвостохранилищ и плотин в бассейнах трансграничных рек",
    "Invitation à l’atelier du Groupe commun d’experts sur l’eau et les accidents "  # noqa: RUF001
    "industriels : sécurité des barrages et des installations de stockage de résidus",
    "Joint Expert Group workshop on the safety of tailings management facilities and dams "
    "in transboundary river basins, with a word far too long to fit on any header line: "
    + "x"
    * 90,
    "Ébauche",
    "Short",
]
LONG_NAMES = [
    ("Александра Константиновна", "Преображенская-Рождественская"),
    ("Marie-Françoise-Geneviève", "de La Tour d’Auvergne-Lauraguais"),  # noqa: RUF001
    ("Zoë", "Müller"),
]
_ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def assert_header_lines_within_limits(raw: bytes) -> EmailMessage:
    """Every line of `raw`'s header block within 78 characters and every encoded word in it
    within 75; `raw` parsed."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert len(line) <= 78, line
        for word in _ENCODED_WORD.findall(line):
            assert len(word) <= 75, word
    return BytesParser(policy=policy.default).parsebytes(raw)


@pytest.mark.parametrize("subject", LONG_SUBJECTS)
@pytest.mark.parametrize(("given", "family"), LONG_NAMES)
def test_long_subjects_and_names_stay_within_the_header_limits(
    app: Flask, subject: str, given: str, family: str
) -> None:
    with app.app_context():
        raw = serialise(
            build_message(
                to_email="zoe@example.org",
                to_name=f"{given} {family}",
                subject=subject,
                text="Body",
                html="<p>Body</p>",
            )
        )

    parsed = assert_header_lines_within_limits(raw)
    assert rfc2047_text(raw, "Subject") == subject
    assert rfc2047_text(raw, "To") == f"{given} {family} <zoe@example.org>"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.org"


def rfc2047_text(raw: bytes, header: str) -> str:
    """A header's text as RFC 2047 reads it: the space between two encoded words is not
    part of the text (Python 3.11's modern parser keeps it; email.header drops it)."""
    value = BytesParser(policy=policy.compat32).parsebytes(raw)[header]
    return str(make_header(decode_header(value)))
