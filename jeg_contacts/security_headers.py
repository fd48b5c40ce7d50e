"""The security headers of every response, set in one place, and the CSRF check that goes
with the Referrer-Policy.

Every response, pages, errors, JSON, downloads, feeds and static files alike, gets:

- a Content-Security-Policy under which only this site's own files run and style a page: no
  inline script or style, no plugins, no <base>, forms post here only, and no other site may
  frame a page (clickjacking);
- `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY` (frame-ancestors for browsers
  that predate it);
- `Referrer-Policy: same-origin`, and `no-referrer` where the address holds a token, so that
  the token is never sent on, not even to this site;
- `Strict-Transport-Security` when JEG_ENV=production.
"""

import base64
import hashlib
import html
import re
from typing import Any

import flask_wtf.csrf
from flask import Flask, g, request
from flask_wtf.csrf import same_origin
from jinja2 import Environment, meta
from werkzeug.wrappers import Response

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
HSTS = "max-age=31536000"  # a year; subdomains left alone, they may not all speak HTTPS

# Pages that show an email in a sandboxed srcdoc frame. Such a frame runs under the page's
# policy, and an email keeps its styles inline because mail clients drop style sheets; so these
# pages allow exactly the style attributes the email templates hold, by hash, and nothing else.
EMAIL_PREVIEW_ENDPOINTS = frozenset({"mailing.new", "mailing.edit", "mailing.detail"})
PREVIEWED_EMAIL = "email/announcement.html"
_STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


def init_app(app: Flask) -> None:
    """Add the headers to every response `app` sends."""
    base_policy = _serialise(POLICY)
    preview_policy = _email_preview_policy(app)

    def add_security_headers(response: Response) -> Response:
        in_preview = request.endpoint in EMAIL_PREVIEW_ENDPOINTS
        response.headers["Content-Security-Policy"] = preview_policy if in_preview else base_policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer" if url_holds_token() else "same-origin"
        if app.config["JEG_ENV"] == "production":
            response.headers["Strict-Transport-Security"] = HSTS
        return response

    app.after_request(add_security_headers)


def url_holds_token() -> bool:
    """Whether the current request's address holds a secret token (a link from an email, an
    upload's page): such pages send no Referer, so the token cannot leak through one."""
    return any(name == "token" or name.endswith("_token") for name in request.view_args or {})


def _sources(environment: Environment, name: str) -> list[str]:
    """The source of template `name` and of every template it extends, includes or imports."""
    assert environment.loader is not None
    source = environment.loader.get_source(environment, name)[0]
    referenced = meta.find_referenced_templates(environment.parse(source))
    return [source] + [
        text for other in referenced if other for text in _sources(environment, other)
    ]


def _serialise(policy: dict[str, str]) -> str:
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


def _email_preview_policy(app: Flask) -> str:
    """The policy of EMAIL_PREVIEW_ENDPOINTS: the base one, plus the email's inline styles."""
    environment = app.jinja_env
    styles: set[str] = set()
    for source in _sources(environment, PREVIEWED_EMAIL):
        for double_quoted, single_quoted in _STYLE_ATTRIBUTE.findall(source):
            # A browser hashes the attribute's value as parsed, entities decoded.
            styles.add(html.unescape(double_quoted or single_quoted))
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
        for style in sorted(styles)
    ]
    # 'unsafe-hashes' lets those hashes match style attributes; without any, it allows nothing.
    allowed = " ".join(["'self'", "'unsafe-hashes'", *hashes] if hashes else ["'self'"])
    return _serialise(POLICY | {"style-src": allowed})


class CSRFProtect(flask_wtf.csrf.CSRFProtect):
    """Flask-WTF's CSRF protection, with its HTTPS Referer check taught about no-referrer pages.

    Over HTTPS, Flask-WTF also refuses a POST whose Referer is missing or names another site.
    But pages whose address holds a token send `Referrer-Policy: no-referrer`, so a browser
    sends no Referer with their forms, even to this site. Here a POST without a Referer passes
    when the browser's `Sec-Fetch-Site` header says it came from this site (browsers set it and
    no page can change it) or, from a browser too old to send that, when the address it is sent
    to holds a token itself (having the token is having the link). The CSRF token is checked
    for every POST, as before.
    """

    def init_app(self, app: Flask) -> None:
        # This class does Flask-WTF's Referer check itself, see _check_origin().
        app.config["WTF_CSRF_SSL_STRICT"] = False
        super().init_app(app)

    def protect(self, *args: Any, **kwargs: Any) -> None:
        super().protect(*args, **kwargs)
        # csrf_valid: the token was checked, so this was a POST (or the like), not exempt.
        if g.get("csrf_valid") and request.is_secure:
            self._check_origin()

    def _check_origin(self) -> None:
        if request.referrer:
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
            return
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site == "same-origin" or (fetch_site is None and url_holds_token()):
            return
        self._error_response("The referrer header is missing.")
