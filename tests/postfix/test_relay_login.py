"""A relay that refuses the app's login: the failure is plain, and nothing counts as sent."""

import logging
import smtplib

import pytest

from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import post_signup
from tests.peers.postfix import PostfixRelay
from tests.postfix.conftest import announce, app_through, delivery_statuses


def wrong_password(request: pytest.FixtureRequest) -> str:
    # One of its own per test: the app may remember a refused login for a few seconds per set
    # of relay settings, and the tests share one relay.
    return f"not the relay password ({request.node.name})"


def test_a_wrong_relay_password_fails_the_sign_up_mail_plainly_and_sends_nothing(
    postfix: PostfixRelay, tmp_path, monkeypatch, caplog, request
) -> None:
    app = app_through(postfix, tmp_path, monkeypatch, password=wrong_password(request))
    refused_before = postfix.failed_logins()

    with caplog.at_level(logging.ERROR):
        response = post_signup(app.test_client(), app)

    assert response.status_code == 302  # the sign-up itself is kept
    [record] = [r for r in caplog.records if "could not deliver" in r.getMessage()]
    error = record.exc_info[1]
    assert isinstance(error, smtplib.SMTPException)
    assert "535" in str(error)  # the relay's own reply
    assert postfix.failed_logins() > refused_before
    postfix.wait_until_idle()
    assert postfix.capture.recorder.messages == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_wrong_relay_password_marks_no_delivery_sent_and_nothing_arrives(
    postfix: PostfixRelay, tmp_path, monkeypatch, request, security: str
) -> None:
    app = app_through(postfix, tmp_path, monkeypatch, security, password=wrong_password(request))
    announcement_id = announce(app)
    refused_before = postfix.failed_logins()

    outcome = DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()

    assert outcome.sent == 0
    assert "sent" not in delivery_statuses(app, announcement_id)
    assert postfix.failed_logins() > refused_before
    postfix.wait_until_idle()
    assert postfix.capture.recorder.messages == []
