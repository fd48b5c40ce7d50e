"""Fixtures for the delivery engine: active contacts, and SMTP servers that misbehave."""

import asyncio
import email
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from email import policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from jeg_contacts.contacts.models import (
    Contact,
    ContactStatus,
    StakeholderType,
    Topic,
)
from jeg_contacts.contacts.services import find_or_create_organisation, new_link_secret
from jeg_contacts.extensions import db, utcnow
from tests.conftest import free_port, make_app, subprocess_environment

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


class HtmlElements(HTMLParser):
    """Every start tag and attribute of an HTML document, to check what sanitising let through."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend((name, value or "") for name, value in attrs)


class FlakySmtpHandler:
    """Accepts mail, except as told: per recipient local-part markers, or per message count.

    - "temp" in the address: 451 on the first `temp_failures` attempts, then accepted;
    - "perm" in the address: 550 every time;
    - "drop" in the address: the connection is cut during DATA on the first attempt.
    """

    def __init__(self, temp_failures: int = 1, delay: float = 0.0) -> None:
        self.temp_failures = temp_failures
        self.delay = delay
        self.on_data: Callable[[str], None] | None = None  # called as each message arrives
        self.attempts: Counter[str] = Counter()
        self.received: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        [recipient] = envelope.rcpt_tos
        with self.lock:
            self.attempts[recipient] += 1
            attempt = self.attempts[recipient]
        if self.on_data:
            self.on_data(recipient)
        if self.delay:
            await asyncio.sleep(self.delay)
        if "perm" in recipient:
            return "550 5.1.1 mailbox unavailable"
        if "temp" in recipient and attempt <= self.temp_failures:
            return "451 4.3.0 try again later"
        if "drop" in recipient and attempt == 1:
            server.transport.close()
            return "421 closing"
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            self.received.append(message)
        return "250 2.0.0 OK"

    def recipients(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["To"].addresses[0].addr_spec) for m in self.received)


@pytest.fixture
def flaky_smtp():
    handler = FlakySmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def mail_app(tmp_path, flaky_smtp):
    _handler, port = flaky_smtp
    return make_app(
        tmp_path,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        DELIVERY_RETRY_BASE_SECONDS=0,
        DELIVERY_MAX_ATTEMPTS=4,
        SMTP_TIMEOUT=5,
    )


def add_contacts(app, emails: list[str], **values) -> list[int]:
    """Active contacts subscribed to every topic, in one organisation per country."""
    with app.app_context():
        topics = db.session.scalars(sa.select(Topic)).all()
        organisation = find_or_create_organisation(
            values.pop("organisation_name", "Umweltbundesamt"),
            StakeholderType(values.pop("stakeholder_type", "national_authority")),
            values.get("country", "DE"),
        )
        contacts = []
        for address in emails:
            contact = Contact(
                given_name=values.get("given_name", "Zoë"),
                family_name=values.get("family_name", address.split("@")[0]),
                email=address,
                email_key=address.casefold(),
                language=values.get("language", "en"),
                country=values.get("country", "DE"),
                status=ContactStatus(values.get("status", "active")),
                link_secret=new_link_secret(),
                organisation=organisation,
                confirmed_at=utcnow(),
                topics=list(topics),
            )
            db.session.add(contact)
            contacts.append(contact)
        db.session.commit()
        return [contact.id for contact in contacts]


@pytest.fixture
def start_worker(mail_app, flaky_smtp):
    """Start `flask worker --until-idle` child processes; any left running are killed."""
    _handler, port = flaky_smtp
    started: list[subprocess.Popen] = []

    def start(*arguments: str) -> subprocess.Popen:
        environment = subprocess_environment(
            mail_app, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), DELIVERY_RETRY_BASE_SECONDS="0"
        )
        process = subprocess.Popen(
            [FLASK, "--app", "wsgi", "worker", "--until-idle", "--quiet", *arguments],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()
