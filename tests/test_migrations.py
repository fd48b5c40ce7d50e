"""The Alembic migrations build exactly the schema the models describe; seeding is repeatable."""

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_migrate import downgrade, upgrade

from jeg_contacts import create_app
from jeg_contacts.contacts.models import ConsentAction, ConsentEvent, Contact, Topic
from jeg_contacts.extensions import db


@pytest.fixture(autouse=True)
def keep_logging_config() -> Iterator[None]:
    """Alembic's env.py runs logging.fileConfig, which replaces the root logger's handlers;
    put logging back so later tests see the usual configuration."""
    root = logging.getLogger()
    root_state = (root.level, list(root.handlers))
    loggers = {
        name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(root_state[0])
    root.handlers[:] = root_state[1]
    for name, (level, handlers, propagate, disabled) in loggers.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture
def migrated_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty SQLite file, built by the migrations alone (no create_all)."""
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "SECRET_KEY": "x"}
    )
    with app.app_context():
        upgrade()
        yield app
        db.engine.dispose()


def schema_differences() -> list[object]:
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), db.metadata)


def table_names() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_migrations_build_the_schema_the_models_describe(migrated_app: Flask) -> None:
    assert {"contacts", "organisations", "topics"} <= table_names()
    assert schema_differences() == []


def test_migrations_downgrade_to_base_and_upgrade_again(migrated_app: Flask) -> None:
    downgrade(revision="base")
    assert table_names() <= {"alembic_version"}

    upgrade()
    assert {"contacts", "organisations", "topics"} <= table_names()
    assert schema_differences() == []


def test_the_migrated_consent_log_accepts_every_consent_action(migrated_app: Flask) -> None:
    """The schema comparison does not look into CHECK constraints: a new action without its
    migration would only fail when first written, in production."""
    contact = Contact(given_name="Ana", family_name="Silva", link_secret="x")
    db.session.add(contact)
    db.session.flush()
    db.session.add_all(
        ConsentEvent(contact_id=contact.id, action=action, source="test")
        for action in ConsentAction
    )
    db.session.commit()

    stored = db.session.scalars(sa.select(ConsentEvent.action).order_by(ConsentEvent.id))
    assert list(stored) == list(ConsentAction)


def test_migration_environment_uses_no_deprecated_api(tmp_path: Path) -> None:
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "SECRET_KEY": "x"}
    )
    with app.app_context(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        upgrade()
        db.engine.dispose()

    assert [str(warning.message) for warning in caught] == []


def test_seed_is_idempotent(app: Flask, runner: FlaskCliRunner) -> None:
    # The `app` fixture has already seeded once, as a fresh installation would.
    first = runner.invoke(args=["seed"])
    second = runner.invoke(args=["seed"])
    with app.app_context():
        slugs = set(db.session.scalars(sa.select(Topic.slug)))

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "Seeded 0 new topic(s)." in first.output
    assert "Seeded 0 new topic(s)." in second.output
    assert len(slugs) == 10
    assert {"pipelines", "tailings-management-facilities", "general-news"} <= slugs


def test_seed_on_a_migrated_database_adds_the_ten_topics_once(migrated_app: Flask) -> None:
    runner = migrated_app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    second = runner.invoke(args=["seed"])

    assert "Seeded 10 new topic(s)." in first.output, first.output
    assert "Seeded 0 new topic(s)." in second.output, second.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Topic)) == 10


def test_announcements_scheduled_before_the_jobs_table_get_their_start_job(
    migrated_app: Flask,
) -> None:
    from datetime import UTC, datetime

    from jeg_contacts.jobs.models import Job, JobStatus
    from jeg_contacts.jobs.runner import JobRunner
    from jeg_contacts.mailing.models import Announcement, AnnouncementStatus

    downgrade(revision="a304ec79f653")
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    db.session.execute(
        sa.insert(Announcement).values(
            kind="general", status="scheduled", scheduled_at=at, subject_en="Old", body_en="x"
        )
    )
    db.session.commit()
    upgrade()

    job = db.session.scalars(sa.select(Job)).one()
    assert (job.kind, job.status, job.run_after) == ("mailing.start_scheduled", "queued", at)
    JobRunner(migrated_app).run_until_idle()
    assert db.session.scalar(sa.select(Announcement.status)) is AnnouncementStatus.SENDING
    assert db.session.get(Job, job.id, populate_existing=True).status is JobStatus.DONE
