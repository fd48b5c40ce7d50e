"""The visitors of bench/load.py, for locust: people browsing the public pages and signing up.

Run through bench/load.py, which starts the servers and reads the results. Each simulated
visitor has an address of its own, passed as nginx would pass it (X-Forwarded-For, -Proto,
-Host; gunicorn runs with TRUSTED_PROXY_COUNT=1), so the per-client sign-up limit applies to
each of them as it would in production.
"""

import itertools
import os
import re
import time

from locust import HttpUser, between, task

PUBLIC = os.environ.get("LOAD_PUBLIC_HOST", "contacts.example.org")
TOKEN = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
TOPIC = re.compile(r'type="checkbox" name="topics" id="[^"]*" value="(\d+)"')
_numbers = itertools.count(1)


class Visitor(HttpUser):
    # A person reads a page for a second or three before the next click.
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.number = next(_numbers)
        self.client.headers.update(
            {
                "X-Forwarded-For": f"10.{self.number // 250}.{self.number % 250}.7",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": PUBLIC,
            }
        )

    def _get(self, path: str, name: str | None = None):
        return self.client.get(path, name=name or path)

    @task(3)
    def landing_page(self) -> None:
        self._get("/")
        self._get("/?lang=fr")

    @task(2)
    def privacy_notice(self) -> None:
        self._get("/privacy?lang=ru", "/privacy")

    @task(2)
    def archive(self) -> None:
        self._get("/announcements")
        self._get("/announcements/feed.atom")

    @task(3)
    def sign_up(self) -> None:
        form = self._get("/signup")
        token, topics = TOKEN.search(form.text), TOPIC.findall(form.text)
        if not (token and topics):
            return
        # The session cookie is Secure (production), so the HTTP client would not send it back
        # over plain HTTP to gunicorn; nginx's clients use HTTPS. Pass it on by hand.
        self.client.post(
            "/signup",
            name="/signup (POST)",
            allow_redirects=False,
            cookies=dict(form.cookies) or None,
            headers={"Referer": f"https://{PUBLIC}/signup"},
            data={
                "csrf_token": token[1],
                "organisation_name": f"Load test organisation {self.number % 40}",
                "stakeholder_type": "national_authority",
                "organisation_country": "CH",
                "given_name": "Load",
                "family_name": f"Visitor {self.number}",
                "email": f"load-{self.number}-{time.time_ns()}@example.org",
                "country": "CH",
                "language": "en",
                "topics": topics[:2],
                "consent": "y",
            },
        )
