"""Real servers for the deployment tests: gunicorn with deploy/gunicorn.conf.py, and nginx with
deploy/nginx/jeg-contacts.conf, both on loopback ports, and a small HTTP client that can pose as
any loopback address and keeps the session cookie."""

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from tests.conftest import free_port, subprocess_environment

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PUBLIC_HOST = "contacts.example.org"
# What the tests' production app is told (SECRET_KEY long enough for JEG_ENV=production).
PRODUCTION = {
    "JEG_ENV": "production",
    "SECRET_KEY": "deployment-tests-" + "k" * 40,
    "BASE_URL": f"https://{PUBLIC_HOST}",
}
TIMEOUT = 30


class Answer:
    """A response read whole: status, headers (all values of repeated ones) and text."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.text = response.read().decode("utf-8", "replace")

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []


class Client:
    """Requests to one server from a chosen loopback source address, sending `Host` as the
    public name and carrying the cookies the server sets (by name, enough for one site)."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None, source: str = "127.0.0.1"):
        self.port, self.tls, self.source = port, tls, source
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Answer:
        if self.tls:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.tls, source_address=(self.source, 0)
            )
        else:
            connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, source_address=(self.source, 0), timeout=TIMEOUT
            )
        all_headers = {"Host": PUBLIC_HOST, **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body.encode() or None, headers=all_headers)
            answer = Answer(connection.getresponse())
        finally:
            connection.close()
        for cookie in answer.all("Set-Cookie"):
            name, value = cookie.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        return answer

    def csrf_token(self, path: str, headers: dict[str, str] | None = None) -> str:
        page = self.request("GET", path, headers=headers).text
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


def wait_until_serving(port: int, process: subprocess.Popen, tls: ssl.SSLContext | None = None):
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            if Client(port, tls).request("GET", "/healthz").status == 200:
                return
        except OSError:
            pass
        assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{process.args[0]} did not answer on {port}"
        time.sleep(0.1)


@contextmanager
def gunicorn(app: Flask, **settings: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """gunicorn serving `app`'s database with deploy/gunicorn.conf.py and these settings."""
    port = free_port()
    environment = {
        **subprocess_environment(app),
        **PRODUCTION,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        **settings,
    }
    process = subprocess.Popen(
        [GUNICORN, "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_serving(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(TIMEOUT)
        process.stderr.close()


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={PUBLIC_HOST}", "-addext", f"subjectAltName=DNS:{PUBLIC_HOST}",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


def site_config(upstream_port: int, http_port: int, https_port: int, cert: Path, key: Path):
    """deploy/nginx/jeg-contacts.conf as shipped, but on loopback ports with a test certificate."""
    site = (ROOT / "deploy/nginx/jeg-contacts.conf").read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        f"/etc/letsencrypt/live/{PUBLIC_HOST}/fullchain.pem": str(cert),
        f"/etc/letsencrypt/live/{PUBLIC_HOST}/privkey.pem": str(key),
        "http://127.0.0.1:8000": f"http://127.0.0.1:{upstream_port}",
    }
    for shipped, test in replacements.items():
        assert shipped in site, f"deploy/nginx/jeg-contacts.conf no longer has {shipped!r}"
        site = site.replace(shipped, test)
    return site


@contextmanager
def nginx(folder: Path, upstream_port: int) -> Iterator[tuple[int, int, ssl.SSLContext]]:
    """nginx running the shipped site config in front of `upstream_port`: its HTTP and HTTPS
    ports and a TLS context that trusts its certificate."""
    folder.mkdir()
    cert, key = self_signed_certificate(folder)
    http_port, https_port = free_port(), free_port()
    # nginx's own frame around the site file, everything under `folder`. As root its workers
    # would switch to an unprivileged user that cannot enter the test's private folder.
    (folder / "nginx.conf").write_text(
        f"""
        {"user root;" if os.geteuid() == 0 else ""}
        worker_processes 1;
        daemon off;
        pid {folder}/nginx.pid;
        error_log {folder}/error.log;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {folder}/body;
            proxy_temp_path {folder}/proxy;
            fastcgi_temp_path {folder}/fastcgi;
            uwsgi_temp_path {folder}/uwsgi;
            scgi_temp_path {folder}/scgi;
            {site_config(upstream_port, http_port, https_port, cert, key)}
        }}
        """
    )
    process = subprocess.Popen(
        ["nginx", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "stderr"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    tls = ssl.create_default_context(cafile=str(cert))
    # The client connects to 127.0.0.1; the certificate names the public host.
    tls.check_hostname = False
    try:
        wait_until_serving(https_port, process, tls)
        yield http_port, https_port, tls
    finally:
        process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        process.wait(TIMEOUT)
        process.stderr.close()
