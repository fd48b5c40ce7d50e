"""`flask outbox`: reading the local Maildir outbox."""

import os
import time
from pathlib import Path

from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from jeg_contacts.mailer import build_message, deliver


def deliver_at(app: Flask, seconds_ago: int, *, to_email: str, subject: str, link: str) -> None:
    """Put one message in the outbox, dated `seconds_ago` (file times order the listing)."""
    outbox = Path(app.config["OUTBOX_DIR"])
    before = set(outbox.glob("*/*"))
    with app.app_context():
        message = build_message(
            to_email=to_email,
            to_name="Contact",
            subject=subject,
            text=f"Please confirm your subscription:\n\n{link}\n",
            html=f'<p><a href="{link}">Confirm</a></p>',
        )
        deliver([message])
    [written] = set(outbox.glob("*/*")) - before
    stamp = time.time() - seconds_ago
    os.utime(written, (stamp, stamp))


def flask_outbox(app: Flask, runner: FlaskCliRunner, *options: str) -> Result:
    """Run `flask outbox`; the `flask` command pushes an app context, app.cli alone does not."""
    with app.app_context():
        return runner.invoke(args=["outbox", *options])


def fill_outbox(app: Flask) -> None:
    deliver_at(
        app, 300, to_email="oldest@example.org", subject="Oldest", link="http://jeg.test/c/1"
    )
    deliver_at(
        app, 200, to_email="middle@example.org", subject="Middle", link="http://jeg.test/c/2"
    )
    deliver_at(
        app, 100, to_email="newest@example.org", subject="Newest", link="http://jeg.test/c/3"
    )


def test_outbox_reports_an_empty_outbox(app: Flask, runner: FlaskCliRunner) -> None:
    result = flask_outbox(app, runner)

    assert result.exit_code == 0, result.output
    assert "The outbox is empty" in result.output
    assert app.config["OUTBOX_DIR"] in result.output


def test_outbox_lists_newest_first_with_recipient_and_subject(
    app: Flask, runner: FlaskCliRunner
) -> None:
    fill_outbox(app)

    result = flask_outbox(app, runner)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    for number, (line, name) in enumerate(zip(lines, ["Newest", "Middle", "Oldest"], strict=True)):
        assert line.lstrip().startswith(f"{number + 1} ")
        assert f"{name.lower()}@example.org" in line
        assert line.endswith(name)


def test_outbox_limit_lists_only_the_newest(app: Flask, runner: FlaskCliRunner) -> None:
    fill_outbox(app)

    result = flask_outbox(app, runner, "--limit", "1")

    assert result.exit_code == 0, result.output
    assert "Newest" in result.output
    assert "Middle" not in result.output
    assert "Oldest" not in result.output


def test_outbox_show_1_prints_the_text_of_the_newest_message(
    app: Flask, runner: FlaskCliRunner
) -> None:
    fill_outbox(app)

    result = flask_outbox(app, runner, "--show", "1")

    assert result.exit_code == 0, result.output
    assert "Subject: Newest" in result.output
    assert "newest@example.org" in result.output
    assert "Please confirm your subscription:" in result.output
    assert "http://jeg.test/c/3" in result.output
    assert "http://jeg.test/c/2" not in result.output
    assert "<a href" not in result.output


def test_outbox_show_2_prints_the_second_newest_message(app: Flask, runner: FlaskCliRunner) -> None:
    fill_outbox(app)

    result = flask_outbox(app, runner, "--show", "2")

    assert result.exit_code == 0, result.output
    assert "Subject: Middle" in result.output
    assert "http://jeg.test/c/2" in result.output


def test_outbox_show_beyond_the_outbox_fails_with_a_clear_error(
    app: Flask, runner: FlaskCliRunner
) -> None:
    fill_outbox(app)

    result = flask_outbox(app, runner, "--show", "99")

    assert result.exit_code != 0
    assert "--show" in result.output
    assert "choose 1 to 3" in result.output
