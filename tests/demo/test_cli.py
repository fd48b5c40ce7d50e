"""`flask demo-data`: creates, reports, and leaves a populated database alone with --if-empty."""

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.models import Contact, Organisation, Topic
from jeg_contacts.demo import cli
from jeg_contacts.extensions import db


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_demo_data_creates_contacts_and_says_what_and_how_long(
    app: Flask, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(args=["demo-data", "--contacts", "200", "--seed", "3"])

    assert result.exit_code == 0, result.output
    match = re.search(
        r"Created 200 demo contacts and (\d+) organisations in \d+\.\d s \(seed 3\)\.",
        result.output,
    )
    assert match, result.output
    assert count(app, Contact) == 200
    assert count(app, Organisation) == int(match.group(1))
    with app.app_context():
        entry = db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "demo.generated")
        )
        assert entry is not None
        assert "200 demo contacts" in entry.summary


def test_if_empty_does_nothing_the_second_time(app: Flask, runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["demo-data", "--contacts", "200", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "Created 200 demo contacts" in first.output

    second = runner.invoke(args=["demo-data", "--contacts", "200", "--if-empty"])

    assert second.exit_code == 0, second.output
    assert "already has contacts" in second.output
    assert "Created" not in second.output
    assert count(app, Contact) == 200


def test_without_if_empty_more_contacts_are_added(app: Flask, runner: FlaskCliRunner) -> None:
    runner.invoke(args=["demo-data", "--contacts", "100"])
    result = runner.invoke(args=["demo-data", "--contacts", "100", "--seed", "1"])

    assert result.exit_code == 0, result.output
    assert count(app, Contact) == 200


def test_large_runs_show_progress(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "PROGRESS_BAR_FROM", 100)

    result = runner.invoke(args=["demo-data", "--contacts", "150"])

    assert result.exit_code == 0, result.output
    assert "Creating demo contacts" in result.output
    assert count(app, Contact) == 150


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_contact_count_must_be_a_positive_number(runner: FlaskCliRunner, value: str) -> None:
    result = runner.invoke(args=["demo-data", "--contacts", value])

    assert result.exit_code == 2
    assert "--contacts" in result.output


def test_all_topics_archived_is_a_clear_error(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        db.session.execute(sa.update(Topic).values(active=False))
        db.session.commit()

    result = runner.invoke(args=["demo-data", "--contacts", "10"])

    assert result.exit_code == 1
    assert "Every topic is archived" in result.output
    assert count(app, Contact) == 0
