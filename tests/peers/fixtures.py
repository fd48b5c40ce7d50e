"""Fixtures for the private Postfix; a test folder's conftest.py imports the ones it uses."""

import os
from collections.abc import Iterator

import pytest

from tests.peers.postfix import CaptureServer, PostfixRelay, unavailable


@pytest.fixture(scope="session")
def postfix_instance() -> Iterator[PostfixRelay]:
    """One Postfix for the whole run (it takes about 3 s to start), stopped at its end."""
    reason = unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to run the private Postfix: {reason}")
        pytest.skip(reason)
    capture = CaptureServer()
    capture.start()
    relay = None
    try:
        relay = PostfixRelay(capture)
        relay.start()
        yield relay
    finally:
        if relay is not None:
            relay.stop()
        capture.stop()


@pytest.fixture
def postfix(postfix_instance: PostfixRelay) -> PostfixRelay:
    """The relay, with nothing left in its queue from earlier tests and a capture of its own."""
    postfix_instance.wait_until_idle()
    postfix_instance.capture.reset()
    return postfix_instance
