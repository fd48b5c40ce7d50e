"""Check an installation made by deploy/install.sh on this machine, then upgrade it mid-send.

    sudo /usr/bin/python3 deploy/check_install.py

CI runs it right after `deploy/install.sh` (.ci/run). It changes the machine (contacts, an
announcement, a second install.sh run), so it is not part of `make test`. Standard library only:
it runs with the system's Python, outside any virtualenv. It checks, through the installed
services:

1. a sign-up over HTTP (the form, its CSRF token, the POST) is answered with a redirect, and the
   confirmation message lands in the installed outbox;
2. an announcement is being sent when `deploy/install.sh` runs again (an upgrade): the upgrade
   stops the worker politely, and once the new worker has finished every recipient has exactly
   one message: none lost, none doubled;
3. the confirmation link mailed before the upgrade still confirms after it (SECRET_KEY kept).

Settings: JEG_PREFIX, JEG_ETC, JEG_DATA as for install.sh; the install's own settings file
says where the web application listens and where the outbox is.
"""

import email
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode, urlsplit

PREFIX = Path(os.environ.get("JEG_PREFIX", "/opt/jeg-contacts"))
ETC = Path(os.environ.get("JEG_ETC", "/etc/jeg-contacts"))
SOURCE = Path(__file__).resolve().parents[1]
SEND_TIMEOUT = 300


def settings() -> dict[str, str]:
    lines = (ETC / "jeg-contacts.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def flask(*arguments: str) -> str:
    """`flask --app wsgi ...` as the installed service runs it (bin/jeg-contacts)."""
    done = subprocess.run(
        [str(PREFIX / "bin/jeg-contacts"), *arguments], capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"jeg-contacts {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


class Site:
    """The installed web application, as a browser reaches it: at BASE_URL, through the proxy,
    when this machine can open it (install.sh with JEG_NGINX=1, as in CI). Otherwise on
    gunicorn's loopback address, with the X-Forwarded-* headers of the one proxy that
    TRUSTED_PROXY_COUNT=1 says is in front, as nginx would send them."""

    def __init__(self, config: dict[str, str]) -> None:
        self.public = config["BASE_URL"]
        self.tls = ssl.create_default_context(cafile=config.get("SSL_CERT_FILE") or None)
        self.cookies: dict[str, str] = {}
        self.forged: dict[str, str] = {}
        self.address = self.public
        try:
            urllib.request.urlopen(f"{self.public}/healthz", timeout=10, context=self.tls)
            print(f"the installed service is reached through the proxy at {self.public}")
        except OSError as error:
            public = urlsplit(self.public)
            self.address = "http://" + config["GUNICORN_BIND"]
            self.forged = {
                "X-Forwarded-For": "192.0.2.14",
                "X-Forwarded-Proto": public.scheme,
                "X-Forwarded-Host": public.netloc,
            }
            print(f"{self.public} cannot be opened here ({error}): posing as the proxy")

    def request(self, path: str, form: dict | None = None) -> tuple[int, str, str]:
        """Status, Location header and text of one request (redirects are not followed)."""
        headers = {
            **self.forged,
            "Referer": self.public + path,
            "Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items()),
        }
        data = urlencode(form, doseq=True).encode() if form is not None else None
        request = urllib.request.Request(self.address + path, data=data, headers=headers)
        opener = urllib.request.build_opener(
            _NoRedirects, urllib.request.HTTPSHandler(context=self.tls)
        )
        try:
            with opener.open(request, timeout=30) as response:
                status, answer = response.status, response
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            status, answer, text = error.code, error, error.read().decode()
        for cookie in answer.headers.get_all("Set-Cookie") or []:
            name, value = cookie.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        return status, answer.headers.get("Location", ""), text


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def csrf_token(page: str) -> str:
    return re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', page)[1]


def outbox(config: dict[str, str]) -> list[EmailMessage]:
    folder = Path(config.get("OUTBOX_DIR") or Path(config["INSTANCE_PATH"]) / "outbox")
    files = [path for name in ("new", "cur") for path in (folder / name).glob("*")]
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in files]


def check_signup(site: Site, config: dict[str, str]) -> str:
    """Sign up over HTTP; the path of the confirmation link mailed for it."""
    address = f"install-check-{time.time_ns()}@example.org"
    status, _location, page = site.request("/signup")
    assert status == 200, f"GET /signup answered {status}"
    topics = re.findall(r'type="checkbox" name="topics" id="[^"]*" value="(\d+)"', page)
    assert topics, "the sign-up form offers no topics: did `flask seed` run?"
    form = {
        "csrf_token": csrf_token(page),
        "organisation_name": "Install check",
        "stakeholder_type": "national_authority",
        "organisation_country": "CH",
        "given_name": "Ada",
        "family_name": "Install",
        "email": address,
        "country": "CH",
        "language": "en",
        "topics": topics[:1],
        "consent": "y",
    }
    status, location, page = site.request("/signup", form)
    assert status == 302 and location.endswith("/signup/check-your-inbox"), (status, page[-2000:])
    mail = [
        message for message in outbox(config) if message["To"].addresses[0].addr_spec == address
    ]
    assert len(mail) == 1, f"{len(mail)} confirmation messages for {address} in the outbox"
    text = mail[0].get_body(preferencelist=("plain",)).get_content()
    link = re.search(rf"{re.escape(config['BASE_URL'])}(/confirm/\S+)", text)
    assert link, f"no confirmation link in:\n{text}"
    print(f"ok: sign-up over HTTP, its confirmation message is in the outbox ({address})")
    return link[1]


def start_announcement(marker: str) -> int:
    body = Path(tempfile.mkstemp(suffix=".md")[1])
    body.write_text("Checking that an upgrade loses and doubles no message.\n")
    body.chmod(0o644)  # read by the service user
    announcement = int(flask("announcements", "create", "--subject", marker, "--body", str(body)))
    body.unlink()
    flask("announcements", "send", str(announcement))
    return announcement


def counts(announcement: int) -> dict[str, int]:
    return json.loads(flask("announcements", "status", str(announcement), "--json"))


def wait_for(announcement: int, done: Callable[[dict], bool], what: str) -> dict[str, int]:
    deadline = time.monotonic() + SEND_TIMEOUT
    while not done(state := counts(announcement)):
        assert time.monotonic() < deadline, f"{what}: still {state} after {SEND_TIMEOUT} s"
        time.sleep(0.5)
    return state


def check_upgrade_mid_send(config: dict[str, str]) -> None:
    """Run install.sh again while an announcement is being sent; every recipient gets one."""
    marker = f"Install check {time.time_ns()}"
    announcement = start_announcement(marker)
    before = wait_for(announcement, lambda c: c["sent"] >= 10, "the worker did not start sending")
    unsent = before["total"] - before["sent"] - before["failed"]
    assert unsent > 50, f"too few messages left to catch the worker mid-send: {before}"
    print(f"upgrading while the worker sends announcement {announcement}: {before}")
    subprocess.run([str(SOURCE / "deploy/install.sh")], check=True)
    after = wait_for(announcement, lambda c: c["sent"] + c["failed"] == c["total"], "not sent")
    assert after["sent"] == after["total"] == before["total"], after
    recipients = [
        message["To"].addresses[0].addr_spec
        for message in outbox(config)
        if message["Subject"] == marker
    ]
    assert len(recipients) == after["total"], f"{len(recipients)} messages, {after}"
    assert len(set(recipients)) == len(recipients), "some recipients got the message twice"
    print(f"ok: upgraded mid-send; {after['sent']} recipients, one message each")


def check_confirmation(site: Site, link: str) -> None:
    status, _location, page = site.request(link)
    assert status == 200, f"GET of the confirmation link answered {status}"
    status, _location, page = site.request(link, {"csrf_token": csrf_token(page)})
    assert status == 200 and "/preferences/" in page, (status, page[-2000:])
    print("ok: the link mailed before the upgrade confirms after it (SECRET_KEY kept)")


def main() -> None:
    config = settings()
    # Someone to send to, the first time only (the same machine may run this again).
    flask("demo-data", "--contacts", "300", "--if-empty")
    site = Site(config)
    link = check_signup(site, config)
    check_upgrade_mid_send(config)
    check_confirmation(Site(settings()), link)


if __name__ == "__main__":
    main()
