"""The app served as in production: real gunicorn with deploy/gunicorn.conf.py, behind real
nginx with deploy/nginx/jeg-contacts.conf. Client addresses, https and cookies come out right
only when TRUSTED_PROXY_COUNT says a proxy is there, and a request in flight survives a stop."""

import hashlib
import re
import runpy
import signal
import socket
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from jeg_contacts.extensions import db
from jeg_contacts.ratelimit import RateLimitHit
from tests.conftest import outbox_messages, signup_form, text_body
from tests.deploy.servers import (
    PUBLIC_HOST,
    ROOT,
    Client,
    gunicorn,
    nginx,
    nginx_available,
)

needs_nginx = pytest.mark.skipif(
    not nginx_available(), reason="nginx is not installed (apt-get install nginx)"
)


def recorded_clients(app) -> set[str]:
    """The hashed client keys the sign-up rate limit counted."""
    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(RateLimitHit.key_hash).where(RateLimitHit.bucket == "signup-post")
            )
        )


def key(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def signup_body(app, client: Client, **headers: str) -> str:
    form = signup_form(app, email="ines.garcia@example.org")
    form["csrf_token"] = client.csrf_token("/signup", headers=headers)
    return urlencode(form, doseq=True)


@needs_nginx
def test_behind_nginx_a_signup_over_https_counts_the_real_client_and_mails_https_links(
    app, tmp_path
):
    with (
        gunicorn(app, TRUSTED_PROXY_COUNT="1") as (port, _),
        nginx(tmp_path / "nginx", port) as (
            _http_port,
            https_port,
            tls,
        ),
    ):
        # A visitor at 127.0.0.5 who forges an X-Forwarded-For of their own.
        visitor = Client(https_port, tls, source="127.0.0.5")
        form = visitor.request("GET", "/signup")
        assert form.status == 200
        assert form.headers["Strict-Transport-Security"].startswith("max-age=")
        (session_cookie,) = form.all("Set-Cookie")
        assert "; Secure" in session_cookie and "; HttpOnly" in session_cookie

        answer = visitor.request(
            "POST",
            "/signup",
            signup_body(app, visitor),
            # The CSRF check over HTTPS wants a Referer from this very site.
            {"Referer": f"https://{PUBLIC_HOST}/signup", "X-Forwarded-For": "198.51.100.7"},
        )

    assert answer.status == 302
    # A path, or an https address: never a downgrade to http.
    assert re.match(
        rf"(/|https://{PUBLIC_HOST}/)signup/check-your-inbox", answer.headers["Location"]
    )
    assert recorded_clients(app) == {key("127.0.0.5")}
    (confirmation,) = outbox_messages(app)
    links = re.findall(r"https?://\S+", text_body(confirmation))
    assert links and all(link.startswith(f"https://{PUBLIC_HOST}/") for link in links)


@needs_nginx
def test_behind_nginx_a_post_from_another_site_is_refused(app, tmp_path):
    with (
        gunicorn(app, TRUSTED_PROXY_COUNT="1") as (port, _),
        nginx(tmp_path / "nginx", port) as (
            _http_port,
            https_port,
            tls,
        ),
    ):
        visitor = Client(https_port, tls)
        answer = visitor.request(
            "POST", "/signup", signup_body(app, visitor), {"Referer": "https://evil.example/"}
        )
    # The app knows the request came over HTTPS, so Flask-WTF's referrer check applies.
    assert answer.status == 400
    assert outbox_messages(app) == []


@needs_nginx
def test_nginx_moves_plain_http_to_https(app, tmp_path):
    with (
        gunicorn(app, TRUSTED_PROXY_COUNT="1") as (port, _),
        nginx(tmp_path / "nginx", port) as (
            http_port,
            _https_port,
            _tls,
        ),
    ):
        answer = Client(http_port).request("GET", "/signup?lang=fr")
    assert answer.status == 301
    assert answer.headers["Location"] == f"https://{PUBLIC_HOST}/signup?lang=fr"


def test_nginx_accepts_every_body_the_app_accepts(app):
    site = (ROOT / "deploy/nginx/jeg-contacts.conf").read_text()
    megabytes = int(re.search(r"client_max_body_size (\d+)m;", site)[1])
    app_limit = app.config["MAX_CONTENT_LENGTH"]  # the default
    # Not lower (nginx would refuse an import the app allows, without the app's message),
    # and not much higher (nginx would buffer bodies the app refuses anyway).
    assert app_limit <= megabytes * 1024 * 1024 < app_limit + 2 * 1024 * 1024


def test_without_a_trusted_proxy_forwarded_headers_change_nothing(app):
    with gunicorn(app, TRUSTED_PROXY_COUNT="0") as (port, _):
        client = Client(port)
        forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        answer = client.request("POST", "/signup", signup_body(app, client), forged)
    # No Referer: had the app (or gunicorn) believed the https claim, the referrer check of
    # HTTPS requests would have refused this with 400.
    assert answer.status == 302
    assert recorded_clients(app) == {key("127.0.0.1")}


def test_with_one_trusted_proxy_the_app_takes_the_address_the_proxy_adds(app):
    with gunicorn(app, TRUSTED_PROXY_COUNT="1") as (port, _):
        # The test plays the proxy: the client forged the first entry, the proxy added the last.
        proxy = Client(port)
        forwarded = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"}
        body = signup_body(app, proxy, **forwarded)
        refused = proxy.request("POST", "/signup", body, forwarded)
        accepted = proxy.request(
            "POST", "/signup", body, {**forwarded, "Referer": f"https://{PUBLIC_HOST}/signup"}
        )
    assert refused.status == 400  # https believed: a POST without a Referer is refused
    assert accepted.status == 302
    assert recorded_clients(app) == {key("203.0.113.9")}


def test_a_request_in_flight_when_gunicorn_is_stopped_completes(app):
    with gunicorn(app) as (port, server):
        client = Client(port)
        body = signup_body(app, client).encode()
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(
                (
                    "POST /signup HTTP/1.1\r\n"
                    f"Host: {PUBLIC_HOST}\r\nCookie: {cookie}\r\nConnection: close\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body[:20]
            )
            time.sleep(2)  # a worker has taken the connection and is reading the body
            server.send_signal(signal.SIGTERM)
            time.sleep(1)
            connection.sendall(body[20:])
            reply = b""
            while chunk := connection.recv(65536):
                reply += chunk
        assert server.wait(30) == 0
    assert reply.startswith(b"HTTP/1.1 302 ")
    assert len(outbox_messages(app)) == 1


def test_the_access_log_holds_no_token_of_an_emailed_link(app, tmp_path):
    access_log = tmp_path / "access.log"
    with gunicorn(app, GUNICORN_ACCESS_LOG=str(access_log)) as (port, _):
        client = Client(port)
        client.request("POST", "/signup", signup_body(app, client))
        (confirmation,) = outbox_messages(app)
        path = re.search(rf"https://{PUBLIC_HOST}(/confirm/\S+)", text_body(confirmation))[1]
        assert client.request("GET", path).status == 200
    log = access_log.read_text()
    token = path.removeprefix("/confirm/")
    assert '"GET /confirm/<token> HTTP/1.1" 200' in log
    assert token not in log


def test_gunicorn_settings_follow_the_cpus_and_the_environment(monkeypatch):
    def settings(**environment: str) -> dict:
        for name in ("WEB_CONCURRENCY", "TRUSTED_PROXY_COUNT", "FORWARDED_ALLOW_IPS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(ROOT / "deploy/gunicorn.conf.py"))

    import os

    defaults = settings()
    assert defaults["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
    assert defaults["forwarded_allow_ips"] == ""  # no trusted proxy: gunicorn trusts nobody
    assert defaults["bind"] == "127.0.0.1:8000"
    assert settings(WEB_CONCURRENCY="3")["workers"] == 3
    assert settings(TRUSTED_PROXY_COUNT="1")["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert (
        settings(TRUSTED_PROXY_COUNT="1", FORWARDED_ALLOW_IPS="10.0.0.2")["forwarded_allow_ips"]
        == "10.0.0.2"
    )
