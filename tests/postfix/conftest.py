"""The app's mail through a real Postfix: its private instance (tests/peers/postfix.py)."""

from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import make_app
from tests.peers.fixtures import postfix, postfix_instance
from tests.peers.postfix import PostfixRelay

__all__ = ["postfix", "postfix_instance"]


def app_through(
    postfix: PostfixRelay,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    security: str = "starttls",
    password: str | None = None,
) -> Flask:
    """An app configured, as an operator would through the environment, to send through
    `postfix` with `security` ("starttls" or "tls") and a login."""
    for name, value in postfix.app_environment(security, password).items():
        monkeypatch.setenv(name, value)
    return make_app(tmp_path, BASE_URL="http://jeg.test")
