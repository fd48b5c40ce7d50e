"""Security headers on every response: a strict Content-Security-Policy, nosniff, a
Referrer-Policy that keeps tokens in URLs to ourselves, HSTS in production; and pages with
nothing inline that such a policy would block."""

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from jeg_contacts.contacts.links import confirm_token, manage_token
from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing.models import AnnouncementStatus
from tests.conftest import csrf_token, make_app, staff_client
from tests.directory.conftest import make_contact
from tests.imports.conftest import csv_bytes, row
from tests.imports.web_import import preview_url, upload

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
HTTPS = "https://localhost"
LONG_SECRET = "a-production-secret-key-of-more-than-32-characters"


@dataclass
class Site:
    """An app with something on every kind of page, and what is needed to reach them."""

    app: Flask
    admin: FlaskClient
    contact_id: int
    manage: str  # an active subscriber's preference/unsubscribe token
    confirm: str  # a pending contact's confirmation token
    published_id: int
    draft_id: int


@pytest.fixture
def site(app: Flask) -> Site:
    active = make_contact(app, email="zoe@example.org", country="DE")
    make_contact(app, email="ivan@example.kz", organisation="Kazhydromet",
                 organisation_country="KZ", language="ru")  # fmt: skip
    pending = make_contact(app, email="olga@example.org", status="pending")
    with app.test_request_context():
        manage = manage_token(db.session.get(Contact, active))
        confirm = confirm_token(db.session.get(Contact, pending))
        published = drafts.save_draft(
            drafts.AnnouncementDraft(
                kind="activity", subject_en="Workshop", body_en="The **workshop** is in Almaty."
            )
        )
        published.status = AnnouncementStatus.SENT
        published.started_at = published.finished_at = utcnow() - timedelta(days=1)
        published.published = True
        draft = drafts.save_draft(
            drafts.AnnouncementDraft(
                kind="activity", subject_en="Exercise", body_en="Dear {{ given_name }},\n\nHello."
            )
        )
        db.session.commit()
        ids = published.id, draft.id
    return Site(app, staff_client(app, "admin"), active, manage, confirm, *ids)


# --- Reading headers and pages --------------------------------------------------------------


def policy(response: TestResponse) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request.path}"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split() or [""]
        if name:
            assert name.lower() not in directives, f"{name} given twice: {header}"
            directives[name.lower()] = sources
    return directives


def assert_security_headers(response: TestResponse) -> None:
    where = f"{response.request.method} {response.request.path} ({response.status_code})"
    csp = policy(response)
    assert csp.get("default-src") == ["'self'"], where
    for directive in ("script-src", "style-src"):
        sources = csp.get(directive, csp["default-src"])
        assert "'unsafe-inline'" not in sources, f"{where}: {directive} {sources}"
        assert "'unsafe-eval'" not in sources, f"{where}: {directive} {sources}"
        assert not {"*", "data:", "http:", "https:"} & set(sources), f"{where}: {directive}"
    assert csp.get("script-src") == ["'self'"], where  # no hash, no nonce: only our files
    assert csp.get("object-src") == ["'none'"], where
    assert csp.get("base-uri") in (["'none'"], ["'self'"]), where
    assert csp.get("form-action") == ["'self'"], where
    assert csp.get("frame-ancestors") == ["'none'"], where
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert response.headers.get("X-Frame-Options") == "DENY", where
    assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


class InlineCode(HTMLParser):
    """What a page (and the documents it embeds with srcdoc) runs or styles inline."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []  # never allowed: inline scripts, handlers, javascript: URLs
        self.style_attributes: list[str] = []  # allowed only by a hash in the page's policy
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and "src" not in values:
            self._in_script = True
        if tag == "style":
            self.found.append("<style> element")
        for name, value in values.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action", "formaction") and re.match(
                r"\s*javascript:", value, re.I
            ):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name == "style":
                self.style_attributes.append(value)
            if name == "srcdoc":
                self.feed_embedded(value)

    def feed_embedded(self, document: str) -> None:
        embedded = InlineCode()
        embedded.feed(document)
        embedded.close()
        self.found += [f"in srcdoc: {item}" for item in embedded.found]
        self.style_attributes += embedded.style_attributes

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def assert_nothing_inline_is_blocked(response: TestResponse) -> None:
    """What the browser would refuse to run or apply under this response's own policy."""
    if response.mimetype != "text/html":
        return
    parser = InlineCode()
    parser.feed(response.get_data(as_text=True))
    parser.close()
    where = f"{response.request.method} {response.request.path}"
    assert parser.found == [], where
    style_src = policy(response).get("style-src", [])
    for value in parser.style_attributes:
        allowed = "'unsafe-hashes'" in style_src and _sha256(value) in style_src
        assert allowed, f"{where}: style={value!r} is blocked by style-src {style_src}"


# --- Every kind of response -------------------------------------------------------------------

PUBLIC = [
    "/",
    "/?lang=fr",
    "/signup",
    "/signup/check-your-inbox",
    "/privacy",
    "/new-link",
    "/new-link/sent",
    "/announcements",
    "/announcements/{published_id}",
    "/announcements/feed.atom",
    "/healthz",
    "/static/style.css",
    "/static/mailing.js",
    "/favicon.ico",
    "/no-such-page",
    "/announcements/999999",
    "/admin/login",
    "/admin/contacts",  # logged out: a redirect to the login page
]
TOKENISED = [
    "/preferences/{manage}",
    "/preferences/{manage}/erase",
    "/unsubscribe/{manage}",
    "/confirm/{confirm}",
    "/preferences/1.forged",
    "/unsubscribe/1.forged",
    "/confirm/1.2.forged",
]
BACK_OFFICE = [
    "/admin",
    "/admin/contacts",
    "/admin/contacts?q=Zo%C3%AB&country=DE",
    "/admin/contacts/{contact_id}",
    "/admin/contacts/{contact_id}/edit",
    "/admin/contacts/{contact_id}/personal-data.json",
    "/admin/contacts/new",
    "/admin/contacts/bulk?status=active",
    "/admin/organisations",
    "/admin/announcements",
    "/admin/announcements/new",
    "/admin/announcements/{draft_id}",
    "/admin/announcements/{draft_id}/edit",
    "/admin/announcements/{draft_id}/status.json",
    "/admin/announcements/audience-count?language=ru",
    "/admin/announcements/999999",
    "/admin/exports",
    "/admin/exports/download?format=csv",
    "/admin/exports/download?format=xlsx",
    "/admin/exports/download?format=vcf",
    "/admin/exports/download?format=jsonl",
    "/admin/imports",
    "/admin/topics",
    "/admin/audit",
    "/admin/users",
    "/admin/account/password",
]


def _url(site: Site, template: str) -> str:
    return template.format(**vars(site))


def fetch(client: FlaskClient, url: str, **options: object) -> TestResponse:
    """GET `url`, its body read and its file (a static file, a download) closed."""
    response = client.get(url, **options)
    response.get_data()
    response.close()
    return response


def test_public_pages_errors_feeds_and_files_carry_the_security_headers(site):
    client = site.app.test_client()
    for url in PUBLIC + TOKENISED:
        response = fetch(client, _url(site, url))

        assert_security_headers(response)
        assert "Strict-Transport-Security" not in response.headers  # not in development
        assert_nothing_inline_is_blocked(response)


def test_back_office_pages_json_and_downloads_carry_the_security_headers(site):
    for url in BACK_OFFICE:
        response = fetch(site.admin, _url(site, url))

        assert response.status_code in (200, 404), (url, response.status_code)
        assert_security_headers(response)
        assert_nothing_inline_is_blocked(response)


def test_posts_errors_and_downloads_after_a_post_carry_the_security_headers(site):
    client = site.app.test_client()
    responses = [
        client.post("/signup", data={"email": "x@example.org"}),  # no CSRF token: 400
        client.post("/admin/logout"),  # logged out: CSRF refused
        client.get("/admin/logout"),  # 405
        client.post(
            f"/preferences/{site.manage}/my-data",
            data={"csrf_token": csrf_token(client, f"/preferences/{site.manage}")},
        ),  # the person's own data, as a JSON download
        client.post(f"/unsubscribe/{site.manage}", data={"List-Unsubscribe": "One-Click"}),
        site.admin.post(
            "/admin/announcements/preview",
            data={"csrf_token": csrf_token(site.admin, "/admin/announcements/new")},
        ),
    ]
    assert [response.status_code for response in responses] == [400, 400, 405, 200, 200, 200]
    assert responses[3].headers["Content-Disposition"].startswith("attachment")
    for response in responses:
        assert_security_headers(response)
        assert_nothing_inline_is_blocked(response)


def test_an_unexpected_error_page_carries_the_security_headers(tmp_path):
    app = make_app(tmp_path, PROPAGATE_EXCEPTIONS=False)

    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", view_func=broken)
    response = fetch(app.test_client(), "/broken")

    assert response.status_code == 500
    assert_security_headers(response)
    assert_nothing_inline_is_blocked(response)


def test_dashboard_charts_are_drawn_without_inline_styles(site):
    page = site.admin.get("/admin")

    assert page.get_data(as_text=True).count('<svg xmlns="http://www.w3.org/2000/svg"') >= 4
    assert_nothing_inline_is_blocked(page)


# --- Referrer-Policy: a token in the address never travels on ----------------------------------


def test_pages_whose_address_holds_a_token_send_no_referrer(site):
    client = site.app.test_client()
    for url in TOKENISED:
        response = fetch(client, _url(site, url))

        assert response.headers["Referrer-Policy"] == "no-referrer", url


def test_an_upload_page_whose_address_holds_a_token_sends_no_referrer(site):
    editor = staff_client(site.app, "editor")
    url = preview_url(upload(editor, csv_bytes([row("anna@example.org")])))
    assert re.fullmatch(r"/admin/imports/[\w-]+", url), url

    for address in (url, f"{url}/status", f"{url}/rejected.csv"):
        assert fetch(editor, address).headers["Referrer-Policy"] == "no-referrer", address


def test_other_pages_send_their_address_to_this_site_only(site):
    for url in ("/", "/signup", "/privacy", "/admin", "/admin/contacts", "/no-such-page"):
        response = fetch(site.admin, url)

        assert response.headers["Referrer-Policy"] == "same-origin", url


def _download_form(client: FlaskClient, token: str) -> dict[str, str]:
    return {"csrf_token": csrf_token(client, f"/preferences/{token}")}


def test_forms_on_token_pages_still_work_over_https_without_a_referer(site):
    """Under no-referrer the browser sends no Referer, even to this site: Flask-WTF's HTTPS
    check must not refuse the form the page itself holds."""
    client = site.app.test_client()
    token_page = client.get(f"/preferences/{site.manage}", base_url=HTTPS)
    assert token_page.headers["Referrer-Policy"] == "no-referrer"

    # A current browser says where the form came from in Sec-Fetch-Site.
    download = client.post(
        f"/preferences/{site.manage}/my-data",
        base_url=HTTPS,
        data=_download_form(client, site.manage),
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert download.status_code == 200, download.get_data(as_text=True)
    assert download.is_json
    # A forged link's page offers a new link: that form is not on a token route itself.
    new_link = client.post(
        "/new-link",
        base_url=HTTPS,
        data={"csrf_token": csrf_token(client, "/preferences/1.forged"), "email": "a@example.org"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert new_link.status_code == 302, new_link.get_data(as_text=True)
    # A browser too old for Sec-Fetch-Site: the token in the address is the proof.
    old_browser = client.post(
        f"/preferences/{site.manage}/my-data",
        base_url=HTTPS,
        data=_download_form(client, site.manage),
    )
    assert old_browser.status_code == 200, old_browser.get_data(as_text=True)


def test_a_post_from_another_site_without_a_referer_is_still_refused_over_https(site):
    client = site.app.test_client()
    data = {"csrf_token": csrf_token(client, "/new-link"), "email": "a@example.org"}

    cross_site = client.post(
        "/new-link", base_url=HTTPS, data=data, headers={"Sec-Fetch-Site": "cross-site"}
    )
    no_origin_at_all = client.post("/new-link", base_url=HTTPS, data=data)
    token_route_cross_site = client.post(
        f"/preferences/{site.manage}/my-data",
        base_url=HTTPS,
        data=_download_form(client, site.manage),
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    wrong_referer = client.post(
        "/new-link",
        base_url=HTTPS,
        data=data,
        headers={"Sec-Fetch-Site": "same-origin", "Referer": "https://evil.example/"},
    )

    assert cross_site.status_code == 400
    assert no_origin_at_all.status_code == 400
    assert token_route_cross_site.status_code == 400
    assert wrong_referer.status_code == 400
    same_site = client.post(
        "/new-link", base_url=HTTPS, data=data, headers={"Referer": f"{HTTPS}/new-link"}
    )
    assert same_site.status_code == 302


# --- HSTS ----------------------------------------------------------------------------------


def test_strict_transport_security_is_sent_in_production_only(tmp_path, monkeypatch, app):
    monkeypatch.setenv("JEG_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    (tmp_path / "production").mkdir()
    production = make_app(tmp_path / "production", SECRET_KEY=LONG_SECRET)
    client = production.test_client()

    for url in ("/", "/no-such-page", "/static/style.css", "/healthz", "/admin/login"):
        response = fetch(client, url, base_url=HTTPS)
        hsts = response.headers.get("Strict-Transport-Security", "")
        max_age = re.fullmatch(r"max-age=(\d+)(; includeSubDomains)?", hsts)
        assert max_age and int(max_age[1]) >= 180 * 24 * 3600, (url, hsts)
        assert_security_headers(response)
    assert "Strict-Transport-Security" not in app.test_client().get("/").headers


# --- Templates ---------------------------------------------------------------------------------

INLINE_PATTERNS = {
    "inline <script>": re.compile(r"<script\b(?![^>]*\ssrc=)[^>]*>", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def _web_templates() -> list[Path]:
    # templates/email/ holds emails, which mail clients need styled inline.
    return [
        path
        for path in sorted(TEMPLATES.rglob("*.html"))
        if path.relative_to(TEMPLATES).parts[0] != "email"
    ]


def test_no_web_template_has_inline_script_or_style():
    templates = _web_templates()
    assert len(templates) > 40

    found = [
        f"{path.relative_to(TEMPLATES)}:{source[: match.start()].count(chr(10)) + 1}: {what}"
        for path in templates
        for source in [path.read_text()]
        for what, pattern in INLINE_PATTERNS.items()
        for match in pattern.finditer(source)
    ]

    assert found == []


def test_the_scan_would_see_what_it_looks_for():
    samples = {
        "inline <script>": '<script>alert(1)</script><script src="/x.js" defer></script>',
        "<style> element": "<style>p{}</style>",
        "style attribute": '<p style="color:red">',
        "event handler attribute": '<button onclick="go()">',
        "javascript: URL": '<a href="javascript:go()">',
    }
    for what, sample in samples.items():
        assert len(INLINE_PATTERNS[what].findall(sample)) == 1, what
    parser = InlineCode()
    parser.feed("".join(samples.values()) + '<iframe srcdoc="<p onclick=x>"></iframe>')
    assert len(parser.found) == 5 and parser.style_attributes == ["color:red"]
