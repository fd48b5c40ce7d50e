"""The whole chain as a server runs it: gunicorn serving wsgi:app and `flask worker` as
separate processes on one database (PostgreSQL when TEST_DATABASE_URL names it), sending
through the private Postfix (tests/peers/postfix.py); Chromium drives it as people would."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from tests.browser.conftest import page, pytest_runtest_makereport
from tests.conftest import free_port, make_app, subprocess_environment
from tests.peers.postfix import PostfixRelay

__all__ = ["page", "pytest_runtest_makereport"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Server:
    """The running chain: its address, and the app on the same database, for setting up and
    checking what the processes did."""

    app: Flask
    url: str
    web: subprocess.Popen
    worker: subprocess.Popen


def _start(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own: if it must be killed, its children (gunicorn's workers) go too.
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(*processes: subprocess.Popen) -> list[int]:
    """SIGTERM to each, as systemd stops a service; SIGKILL to the whole group of any that
    has not finished 20 s later. Their exit codes."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=20))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            codes.append(process.wait())
    return codes


def _wait_until_serving(url: str, web: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/", timeout=10) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError is an OSError)
            pass
        if web.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"gunicorn did not start serving:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path, postfix: PostfixRelay) -> Iterator[Server]:
    """gunicorn and `flask worker`, configured through the environment as a server is, with
    the relay over STARTTLS and a login; both stopped with SIGTERM afterwards, and their logs
    printed (pytest shows them when the test fails). The app returned uses the same database,
    to set up and check what the processes did."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(tmp_path, BASE_URL=url)
    environment = subprocess_environment(app, **postfix.app_environment("starttls"))
    gunicorn = [
        str(BIN / "gunicorn"),
        f"--bind=127.0.0.1:{port}",
        "--workers=2",
        "--access-logfile=-",
        # Not the default control socket in root's home: two servers would share it.
        "--no-control-socket",
        "wsgi:app",
    ]
    commands = {"gunicorn": gunicorn, "worker": [str(BIN / "flask"), "--app", "wsgi", "worker"]}
    started: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            started[name] = _start(command, environment, tmp_path / f"{name}.log")
        _wait_until_serving(url, started["gunicorn"], tmp_path / "gunicorn.log")
        yield Server(app, url, started["gunicorn"], started["worker"])
    finally:
        codes = _stop(*started.values())
        for name, code in zip(started, codes, strict=True):
            log = (tmp_path / f"{name}.log").read_text(errors="replace")
            print(f"--- {name} (exit {code}) ---\n{log}")
        # Both stop cleanly on SIGTERM, as under systemd; anything else is a failure too.
        assert codes == [0] * len(codes), dict(zip(started, codes, strict=True))
