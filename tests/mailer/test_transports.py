"""Delivering mail: Maildir outbox, a real SMTP server, and only after the data is committed."""

import logging
from pathlib import Path

import pytest
from flask import Flask

from jeg_contacts.contacts.models import Topic, TopicGroup
from jeg_contacts.extensions import db
from jeg_contacts.mailer import build_message, deliver, send_after_commit
from tests.conftest import (
    RecordingHandler,
    free_port,
    html_body,
    make_app,
    outbox_messages,
    text_body,
)


def confirmation(to_email: str = "zoe.mueller@example.org", subject: str = "Please confirm"):
    return build_message(
        to_email=to_email,
        to_name="Zoë Müller",
        subject=subject,
        text="Confirm: http://jeg.test/confirm/abc",
        html='<p><a href="http://jeg.test/confirm/abc">Confirm</a></p>',
    )


def add_topic(slug: str) -> None:
    db.session.add(
        Topic(
            slug=slug,
            label_en=slug,
            label_fr=slug,
            label_ru=slug,
            group=TopicGroup.GENERAL,
            position=999,
            active=True,
        )
    )


def topic_exists(slug: str) -> bool:
    return db.session.scalar(db.select(Topic).where(Topic.slug == slug)) is not None


def test_deliver_without_smtp_host_writes_to_the_maildir_outbox(app: Flask) -> None:
    assert not app.config["SMTP_HOST"]
    with app.app_context():
        deliver([confirmation(subject="Please confirm your subscription")])

    [message] = outbox_messages(app)
    assert message["Subject"] == "Please confirm your subscription"
    assert message["To"].addresses[0].addr_spec == "zoe.mueller@example.org"
    assert "http://jeg.test/confirm/abc" in text_body(message)


def test_deliver_of_nothing_writes_nothing(app: Flask) -> None:
    with app.app_context():
        deliver([])

    assert outbox_messages(app) == []


def test_deliver_with_smtp_host_sends_through_the_smtp_server(
    smtp_app: Flask, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _port = smtp_server
    with smtp_app.app_context():
        deliver([confirmation(subject="Please confirm your subscription")])

    [message] = handler.wait_for(1)
    assert handler.envelopes == [("jeg@unece.test", ["zoe.mueller@example.org"])]
    assert message["Subject"] == "Please confirm your subscription"
    assert "http://jeg.test/confirm/abc" in text_body(message)
    assert 'href="http://jeg.test/confirm/abc"' in html_body(message)
    assert outbox_messages(smtp_app) == []


def test_deliver_sends_each_message_to_its_own_recipient(
    smtp_app: Flask, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _port = smtp_server
    with smtp_app.app_context():
        deliver([confirmation("first@example.org"), confirmation("second@example.org")])

    handler.wait_for(2)
    assert sorted(recipients for _sender, recipients in handler.envelopes) == [
        ["first@example.org"],
        ["second@example.org"],
    ]


def test_send_after_commit_delivers_only_once_committed(app: Flask) -> None:
    with app.app_context():
        add_topic("dam-safety")
        send_after_commit(confirmation())
        db.session.flush()
        assert outbox_messages(app) == []

        db.session.commit()

    [message] = outbox_messages(app)
    assert message["To"].addresses[0].addr_spec == "zoe.mueller@example.org"


def test_send_after_commit_drops_the_message_on_rollback(app: Flask) -> None:
    with app.app_context():
        add_topic("dam-safety")
        send_after_commit(confirmation())
        db.session.flush()
        db.session.rollback()
        assert outbox_messages(app) == []

        # A later, unrelated transaction must not carry the dropped message along.
        add_topic("flood-risk")
        db.session.commit()

    assert outbox_messages(app) == []


def test_send_after_commit_drops_the_message_on_rollback_before_any_query(app: Flask) -> None:
    with app.app_context():
        send_after_commit(confirmation())
        db.session.rollback()

        add_topic("flood-risk")
        db.session.commit()

    assert outbox_messages(app) == []


def test_failed_delivery_after_commit_is_logged_and_keeps_the_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed_port = free_port()  # nothing listens there: the connection is refused
    app = make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port, SMTP_TIMEOUT=2)
    try:
        with app.app_context():
            add_topic("dam-safety")
            send_after_commit(confirmation())
            with caplog.at_level(logging.ERROR):
                db.session.commit()  # must not raise

        with app.app_context():
            assert topic_exists("dam-safety")
    finally:
        with app.app_context():
            db.engine.dispose()

    [record] = [r for r in caplog.records if "could not deliver" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "could not deliver 1 message(s)"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], OSError)
    assert outbox_messages(app) == []
