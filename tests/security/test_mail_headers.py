"""Address headers built from people's names: whatever someone types as their name, the
receiving side reads exactly one address, theirs, and the mail goes out."""

import email
import random
import re
from collections.abc import Iterator
from email import policy
from email.header import decode_header, make_header
from email.utils import getaddresses
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask

from jeg_contacts.contacts.models import Contact, ContactStatus, Topic, search_key
from jeg_contacts.contacts.services import new_link_secret
from jeg_contacts.extensions import db
from jeg_contacts.mailer import build_message, deliver
from jeg_contacts.mailer.messages import HeaderInjectionError
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.models import Delivery
from jeg_contacts.mailing.rendering import LanguageVersion, MessageFactory, Recipient
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import free_port, make_app, post_signup

FRAGMENTS = [
    "Anna", "O'Brien", "Jean-Luc", "van der Berg", "Dr.", "Jr.", "Smith, John",
    ",", ";", ":", '"', '\\"', "\\", "<", ">", "<evil@evil.example>", "@", "attacker@evil.example",
    "(comment)", "[x]", "=?utf-8?q?=0D=0ABcc:_evil@evil.example?=", "\r\n", "\n", "\r", "\t",
    "\r\nBcc: evil@evil.example", "\x00", "\x85", "\u2028",
    "Жанна", "Иванова", "Пётр Ильич", "山田太郎", "王小明", "김민준",
    "👩‍🔬", "🌊", "🇺🇦", "محمد", "עברית", "\u200f", "\u202e", "Zoë Müller",
    "x" * 90, "Ж" * 70, "😀" * 30, "a " * 40, "Wolfeschlegelsteinhausenbergerdorff" * 2,
]  # fmt: skip
SEPARATORS = ["", " ", ", ", "; ", '" ', "  "]
EDGE_CASES = [
    "",
    " ",
    "a" * 300,
    "a " * 150,
    '"' * 60,
    "\\" * 60,
    ", " * 60,
    'Bob Example, attacker@evil.example, Carol; Dan "the man" Longname Longname Longname',
    "Wolfeschlegelsteinhausenbergerdorffwelchevoralternwarengewissenhaftschaferswessenschafe",
    "😀" * 300,
    "Ж" * 120 + " " + "ж" * 120,
]
_CONTROLS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def hostile_names(count: int, *, max_length: int | None = None, seed: int = 9) -> list[str]:
    """`count` names made of hostile fragments, the edge cases first; reproducible."""
    rng = random.Random(seed)
    names = list(EDGE_CASES)
    while len(names) < count:
        parts = rng.choices(FRAGMENTS, k=rng.randint(1, 7))
        names.append("".join(part + rng.choice(SEPARATORS) for part in parts))
    if max_length is not None:
        names = [name[:max_length] for name in names]
    return names[:count]


def expected_display_name(name: str) -> str:
    """What the recipient should read: the name on one line, runs of whitespace as one space,
    and no character pair that could open an encoded word."""
    return " ".join(_CONTROLS.sub(" ", name).replace("=?", "= ?").split())


def squashed(text: str) -> str:
    return "".join(text.split())


_ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def assert_one_address(raw: bytes, addr_spec: str, display_name: str) -> None:
    """Read the To header as a modern parser, a legacy one and an RFC 2047 decoder would."""
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in lines) <= 998  # RFC 5322's hard limit
    for line in lines:
        if _ENCODED_WORD.search(line):  # RFC 2047: at most 75 per word, 76 per such line
            assert len(line) <= 76, raw
            assert max(len(word) for word in _ENCODED_WORD.findall(line)) <= 75, raw
    modern = email.message_from_bytes(raw, policy=policy.default)
    [to] = modern.get_all("To")
    assert [address.addr_spec for address in to.addresses] == [addr_spec], raw
    # Python 3.11 keeps the folding space between two encoded words (RFC 2047 drops it).
    assert squashed(to.addresses[0].display_name) == squashed(display_name), raw
    assert [pair[1] for pair in getaddresses([str(to)])] == [addr_spec], raw
    legacy = email.message_from_bytes(raw, policy=policy.compat32)
    [(name, address)] = getaddresses(legacy.get_all("To"))
    assert address == addr_spec, raw
    assert str(make_header(decode_header(name))) == display_name, raw


class RawRecorder:
    """aiosmtpd handler keeping each message's bytes exactly as they arrived."""

    def __init__(self) -> None:
        self.received: dict[str, bytes] = {}

    async def handle_DATA(self, server, session, envelope) -> str:
        [recipient] = envelope.rcpt_tos
        self.received[recipient] = envelope.original_content
        return "250 OK"


@pytest.fixture
def raw_smtp() -> Iterator[tuple[RawRecorder, int]]:
    recorder, port = RawRecorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


@pytest.fixture
def relay_app(tmp_path: Path, raw_smtp: tuple[RawRecorder, int]) -> Flask:
    return make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=raw_smtp[1], SMTP_TIMEOUT=10)


# -- any name, one address -------------------------------------------------------------------


def test_any_name_in_transactional_mail_reads_back_as_exactly_one_address(
    relay_app: Flask, raw_smtp: tuple[RawRecorder, int]
) -> None:
    recorder, _port = raw_smtp
    names = hostile_names(300)
    with relay_app.test_request_context():
        deliver(
            [
                build_message(
                    to_email=f"person{number}@example.org",
                    to_name=name,
                    subject="Please confirm your subscription",
                    text="Hello",
                    html="<p>Hello</p>",
                )
                for number, name in enumerate(names)
            ]
        )

    assert len(recorder.received) == len(names)
    for number, name in enumerate(names):
        address = f"person{number}@example.org"
        assert_one_address(recorder.received[address], address, expected_display_name(name))


def test_any_name_in_announcements_reads_back_as_exactly_one_address(
    relay_app: Flask, raw_smtp: tuple[RawRecorder, int]
) -> None:
    recorder, _port = raw_smtp
    # What the database can store: PostgreSQL takes no NUL character, given and family names
    # have 100 characters each and their search key 201 (Hangul and ß expand in it).
    givens = [name.replace("\x00", "") for name in hostile_names(250, max_length=100, seed=1)]
    families = [name.replace("\x00", "") for name in hostile_names(250, max_length=100, seed=2)]
    for number, (given, family) in enumerate(zip(givens, families, strict=True)):
        while len(search_key(f"{given} {family}")) > 201:
            given, family = given[:-5], family[:-5]
        givens[number], families[number] = given, family
    with relay_app.app_context():
        topics = db.session.scalars(sa.select(Topic)).all()
        for number, (given, family) in enumerate(zip(givens, families, strict=True)):
            db.session.add(
                Contact(
                    given_name=given,
                    family_name=family,
                    email=f"reader{number}@example.org",
                    email_key=f"reader{number}@example.org",
                    language="en",
                    status=ContactStatus.ACTIVE,
                    link_secret=new_link_secret(),
                    topics=list(topics),
                )
            )
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en="Dear {{ given_name }}")
        )
        mailing.start_sending(announcement)
        db.session.commit()

    DeliveryWorker(relay_app, until_idle=True, poll_seconds=0.05).run()

    assert len(recorder.received) == len(givens)
    for number, (given, family) in enumerate(zip(givens, families, strict=True)):
        address = f"reader{number}@example.org"
        expected = expected_display_name(f"{given} {family}")
        assert_one_address(recorder.received[address], address, expected)


# -- sign-up: the mail goes out, or nothing is stored ----------------------------------------


def stored_contacts(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Contact.email)))


@pytest.mark.parametrize(
    ("given_name", "family_name"),
    [
        ("Bob Example, attacker@evil.example, Carol;", 'Dan "the man" Longname Longname Longname'),
        (
            "Wolfeschlegelsteinhausenbergerdorffwelchevoralternwarengewissenhaftschaferswessen",
            "Schafewarenwohlgepflegeundsorgfaltigkeitbeschutzenvonangreifendurchihrraubgierig",
        ),
        ("Anna", "Smith, attacker@evil.example" + " ;" * 30),
    ],
    ids=["commas-and-quotes", "long-without-spaces", "many-separators"],
)
def test_a_sign_up_with_an_awkward_name_mails_exactly_one_address(
    relay_app: Flask, raw_smtp: tuple[RawRecorder, int], given_name: str, family_name: str
) -> None:
    recorder, _port = raw_smtp

    response = post_signup(
        relay_app.test_client(),
        relay_app,
        given_name=given_name,
        family_name=family_name,
        email="zoe.mueller@example.org",
    )

    assert response.status_code == 302
    assert list(recorder.received) == ["zoe.mueller@example.org"]
    assert_one_address(
        recorder.received["zoe.mueller@example.org"],
        "zoe.mueller@example.org",
        f"{given_name} {family_name}",
    )


def test_a_sign_up_whose_mail_cannot_be_written_stores_nothing_and_says_so(
    tmp_path: Path, raw_smtp: tuple[RawRecorder, int]
) -> None:
    """A sender address mistyped in the configuration: no sign-up can be mailed, so none is
    accepted (no "check your inbox" for a mail that never goes out)."""
    recorder, port = raw_smtp
    app = make_app(
        tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_FROM="JEG secretariat jeg@unece.test>"
    )

    response = post_signup(app.test_client(), app, email="zoe.mueller@example.org")

    assert response.status_code == 400
    assert "nothing was saved" in response.get_data(as_text=True)
    assert stored_contacts(app) == []
    assert recorder.received == {}


# -- bulk mail gets the same header-injection check ------------------------------------------


def test_a_bulk_message_with_a_header_line_nobody_set_is_refused() -> None:
    factory = MessageFactory(
        sender="jeg@unece.test\r\nBcc: evil@evil.example",  # as if cleaning had been skipped
        list_id="JEG <a.jeg.test>",
        message_id_domain="unece.test",
    )
    version = LanguageVersion(language="en", subject="Workshop", text="Hello", html="<p>Hi</p>")
    recipient = Recipient(
        email="zoe@example.org",
        given_name="Zoë",
        family_name="Müller",
        organisation="",
        topics="",
        preferences_url="http://jeg.test/p",
        unsubscribe_url="http://jeg.test/u",
    )

    with pytest.raises(HeaderInjectionError):
        factory.build(version, recipient)


def test_the_worker_records_a_message_it_cannot_build_and_sends_the_others(
    relay_app: Flask, raw_smtp: tuple[RawRecorder, int]
) -> None:
    """A row from before addresses were validated must not stop the announcement."""
    recorder, _port = raw_smtp
    with relay_app.app_context():
        for address in ("broken address@example.org", "fine@example.org"):
            db.session.add(
                Contact(
                    given_name="Zoë",
                    family_name="Müller",
                    email=address,
                    email_key=address,
                    language="en",
                    status=ContactStatus.ACTIVE,
                    link_secret=new_link_secret(),
                    topics=list(db.session.scalars(sa.select(Topic))),
                )
            )
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en="Hello")
        )
        mailing.start_sending(announcement)
        db.session.commit()
        announcement_id = announcement.id

    DeliveryWorker(relay_app, until_idle=True, poll_seconds=0.05).run()

    assert list(recorder.received) == ["fine@example.org"]
    with relay_app.app_context():
        outcomes = dict(
            db.session.execute(
                sa.select(Contact.email, Delivery.status)
                .join(Delivery, Delivery.contact_id == Contact.id)
                .where(Delivery.announcement_id == announcement_id)
            ).all()
        )
    assert {email: status.value for email, status in outcomes.items()} == {
        "broken address@example.org": "failed",
        "fine@example.org": "sent",
    }
