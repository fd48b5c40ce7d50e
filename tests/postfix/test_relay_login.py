"""A relay that refuses the app's login: the failure is plain, and nothing counts as sent."""

import logging

import pytest

from jeg_contacts.extensions import db
from jeg_contacts.mailer.session import RelayProblem, RelayReason
from jeg_contacts.mailing import services as mailing
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus
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
    assert isinstance(error, RelayProblem) and error.reason is RelayReason.LOGIN_REFUSED
    assert "535" in str(error)  # the relay's own reply
    assert postfix.failed_logins() > refused_before
    postfix.wait_until_idle()
    assert postfix.capture.recorder.messages == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_wrong_relay_password_pauses_the_send_after_one_login_and_resuming_sends_all(
    postfix: PostfixRelay, tmp_path, monkeypatch, request, security: str
) -> None:
    app = app_through(postfix, tmp_path, monkeypatch, security, password=wrong_password(request))
    announcement_id = announce(app)
    refused_before = postfix.failed_logins()

    outcome = DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()

    # One refused login, not one per recipient (a real relay locks the account after a few).
    assert postfix.failed_logins() - refused_before == 1
    assert (outcome.sent, outcome.failed) == (0, 0)
    assert delivery_statuses(app, announcement_id) == ["queued"] * 3  # nobody punished
    postfix.wait_until_idle()
    assert postfix.capture.recorder.messages == []
    with app.app_context():
        announcement = db.session.get(Announcement, announcement_id)
        assert announcement.status is AnnouncementStatus.PAUSED
        assert announcement.paused_reason == "login_refused"
        assert "535" in announcement.paused_detail

        # Staff fix the password and resume: everyone gets the message, once.
        app.config["SMTP_PASSWORD"] = postfix.password
        mailing.resume(announcement)
        db.session.commit()
    DeliveryWorker(app, until_idle=True, poll_seconds=0.05).run()

    assert delivery_statuses(app, announcement_id) == ["sent"] * 3
    assert len(postfix.wait_for(3)) == 3
