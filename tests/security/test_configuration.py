"""Configuration that must fail closed: the links `make run` mails, weak secrets, SMTP
credentials in clear, and relays whose certificate only a private CA vouches for."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Stands in for .venv/bin/flask under `make run`: the worker and the server each note the
# confirmation link the app would mail, built by the real app from the environment that
# `make run` gave it; every other command just succeeds.
FAKE_FLASK = """#!{python}
import json, os, sys, time
from pathlib import Path

record = Path(os.environ["FAKE_FLASK_RECORD"])
command = [arg for arg in sys.argv[1:] if arg not in ("--app", "wsgi")]
if command[0] in ("worker", "run"):
    from jeg_contacts import create_app
    from jeg_contacts.mailer import external_url

    with create_app().app_context():
        link = external_url("signup.confirm", token="TOKEN")
    note = {{"command": command, "link": link}}
    (record / command[0]).write_text(json.dumps(note))
    if command[0] == "run":  # the server: stay up until the worker has had its say
        deadline = time.monotonic() + 30
        while not (record / "worker").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""


def make_run(tmp_path: Path, *arguments: str, **environment: str) -> dict[str, dict]:
    """Run the Makefile's `run` target with a stand-in flask; what the worker and server saw."""
    venv, record = tmp_path / "venv", tmp_path / "record"
    (venv / "bin").mkdir(parents=True)
    record.mkdir()
    flask = venv / "bin" / "flask"
    flask.write_text(FAKE_FLASK.format(python=sys.executable))
    flask.chmod(0o755)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / ".installed-app").touch()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BASE_URL", "HOST", "PORT", "MAKEFLAGS", "MAKELEVEL")
    }
    env.update(FAKE_FLASK_RECORD=str(record), INSTANCE_PATH=str(tmp_path / "instance"))
    env.update(environment)
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "run", f"VENV={venv}", *arguments],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {name: json.loads((record / name).read_text()) for name in ("worker", "run")}


def test_make_run_on_another_port_mails_links_to_that_port(tmp_path: Path) -> None:
    seen = make_run(tmp_path, "DEMO_DATA=0", "PORT=5077")

    assert seen["run"]["command"][-2:] == ["--port", "5077"]
    for process in ("worker", "run"):
        assert seen[process]["link"] == "http://127.0.0.1:5077/confirm/TOKEN"


def test_make_run_keeps_an_explicit_base_url(tmp_path: Path) -> None:
    seen = make_run(tmp_path, "DEMO_DATA=0", PORT="5077", BASE_URL="https://contacts.jeg.example")

    assert seen["run"]["command"][-2:] == ["--port", "5077"]
    for process in ("worker", "run"):
        assert seen[process]["link"] == "https://contacts.jeg.example/confirm/TOKEN"
