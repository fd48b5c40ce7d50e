"""Chromium under the app's own Content-Security-Policy: no page of the public site or of the
back office makes it block anything, and their JavaScript still does its work (live count and
preview, sending progress, import progress), with the emails' styles kept in the previews."""

import threading
import time
from datetime import timedelta

from playwright.sync_api import Page, Request, expect

from jeg_contacts.contacts.links import confirm_token, manage_token
from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.imports.services import Importer
from jeg_contacts.mailing import drafts
from jeg_contacts.mailing.models import AnnouncementStatus
from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import STAFF_PASSWORD, create_staff
from tests.directory.conftest import make_contact
from tests.imports.conftest import csv_bytes, row

EMAIL_BACKGROUND = "rgb(243, 245, 247)"  # the email layout's inline body style: #f3f5f7
PLACEHOLDER_COLOUR = "rgb(74, 90, 106)"  # the empty preview's text: #4a5a6a


class Violations:
    """What Chromium reports blocking on a page (in any of its frames), and script errors."""

    def __init__(self, page: Page) -> None:
        self.found: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"script error: {error}"))
        # Also the DOM event, with what was blocked (Chromium logs it in the console as well).
        page.context.add_init_script(
            "document.addEventListener('securitypolicyviolation', (event) => console.error("
            "'Content Security Policy violation: ' + event.violatedDirective + ' blocked '"
            " + (event.blockedURI || 'inline') + ' in ' + event.documentURI))"
        )

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.found.append(f"{message.location.get('url')}: {message.text}")


def visit(page: Page, url: str) -> None:
    """Open `url` and check it came with the policy (any status: error pages too)."""
    response = page.goto(url)
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), url
    page.wait_for_load_state("load")


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def _published(app) -> int:
    with app.app_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(
                kind="activity", subject_en="Workshop", body_en="The **workshop** is in Almaty."
            )
        )
        announcement.status = AnnouncementStatus.SENT
        announcement.started_at = announcement.finished_at = utcnow() - timedelta(days=1)
        announcement.published = True
        db.session.commit()
        return announcement.id


def test_public_pages_break_no_rule_and_tokens_are_not_sent_on(live_server, page):
    app, base = live_server.app, live_server.url
    active = make_contact(app, email="zoe@example.org")
    pending = make_contact(app, email="olga@example.org", status="pending")
    with app.test_request_context():
        manage = manage_token(db.session.get(Contact, active))
        confirm = confirm_token(db.session.get(Contact, pending))
    published = _published(app)
    violations = Violations(page)
    referers: dict[str, str | None] = {}

    def remember_referer(request: Request) -> None:
        if request.is_navigation_request():
            referers[request.url.removeprefix(base)] = request.headers.get("referer")

    page.on("request", remember_referer)

    for path in (
        "/",
        "/?lang=ru",
        "/signup",
        "/?lang=en",
        "/privacy",
        "/new-link",
        "/announcements",
        f"/announcements/{published}",
        f"/preferences/{manage}/erase",
        f"/unsubscribe/{manage}",
        f"/confirm/{confirm}",
        "/preferences/1.forged",
        "/no-such-page",
        f"/preferences/{manage}",
    ):
        visit(page, base + path)

    # The preferences form still posts (form-action 'self'), and the page's links send no
    # Referer at all, so its token reaches no one, this site included.
    page.get_by_role("button", name="Save my preferences").click()
    expect(page.get_by_text("Your preferences are saved.")).to_be_visible()
    assert referers[f"/preferences/{manage}"] is None
    page.get_by_role("link", name="Privacy notice").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert referers["/privacy"] is None
    # An ordinary page still tells this site where a visitor came from.
    page.get_by_role("link", name="Manage your subscription").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert referers["/new-link"] == f"{base}/privacy"

    assert violations.found == []


def test_back_office_pages_and_their_scripts_work_under_the_policy(live_server, page):
    app, base = live_server.app, live_server.url
    create_staff(app, "admin@unece.test", "admin")
    contact = make_contact(app, email="zoe@example.org", language="en")
    make_contact(app, email="olga@example.org", language="ru", organisation="Kazhydromet",
                 organisation_country="KZ")  # fmt: skip
    make_contact(app, email="ivan@example.org", language="ru", organisation="Kazhydromet",
                 organisation_country="KZ")  # fmt: skip
    violations = Violations(page)
    log_in(page, base, "admin@unece.test")

    # The dashboard's charts are SVG drawn on the server, styled by attributes.
    charts = page.locator("svg.chart")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 4
    for path in (
        "/admin/contacts",
        "/admin/contacts?q=zoe&country=DE",
        f"/admin/contacts/{contact}",
        f"/admin/contacts/{contact}/edit",
        "/admin/contacts/new",
        "/admin/organisations",
        "/admin/topics",
        "/admin/audit",
        "/admin/users",
        "/admin/exports",
        "/admin/imports",
        "/admin/account/password",
        "/admin/announcements",
        "/admin/announcements/new",
    ):
        visit(page, base + path)

    # Compose: the live count and the live preview (an email, its inline styles intact).
    frame = page.frame_locator("#preview-html")
    expect(frame.locator("body")).to_have_css("color", PLACEHOLDER_COLOUR)
    count = page.locator("#recipient-count")
    expect(count).to_have_text("3 active contacts")
    page.get_by_label("Русский").check()
    expect(count).to_have_text("2 active contacts")  # updated without reloading
    page.get_by_role("textbox", name="Subject", exact=True).fill("Workshop in Almaty")
    page.get_by_role("textbox", name="Text", exact=True).fill("Dear {{ given_name }},\n\nHello.")
    expect(frame.locator("body")).to_contain_text("Dear Anna,")
    expect(frame.locator("body")).to_have_css("background-color", EMAIL_BACKGROUND)

    # The announcement's page shows the saved email the same way, then follows the sending.
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    saved = page.frame_locator("iframe.preview-frame").first.locator("body")
    expect(saved).to_contain_text("Dear Anna,")
    expect(saved).to_have_css("background-color", EMAIL_BACKGROUND)
    page.get_by_role("link", name="Send or schedule…").click()
    page.get_by_role("button", name="Send now to 2 recipients").click()
    expect(page.locator("#progress-summary")).to_have_text("0 of 2 done (0%)")
    worker = DeliveryWorker(app, poll_seconds=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        expect(page.locator("#progress-summary")).to_have_text("2 of 2 done (100%)")
        expect(page.locator("#progress-finished")).to_be_visible()
    finally:
        worker.stop()
        thread.join()

    assert violations.found == []


def test_import_progress_is_followed_under_the_policy(live_server, page, tmp_path, monkeypatch):
    app, base = live_server.app, live_server.url
    check_rows = Importer._chunk

    def slow_chunk(importer, rows):
        time.sleep(1.5)  # long enough to see the progress page at work
        return check_rows(importer, rows)

    monkeypatch.setattr(Importer, "_chunk", slow_chunk)
    create_staff(app, "editor@unece.test", "editor")
    path = tmp_path / "contacts.csv"
    path.write_bytes(csv_bytes([row("anna@example.org")]))
    violations = Violations(page)
    log_in(page, base, "editor@unece.test")

    visit(page, f"{base}/admin/imports")
    page.get_by_label("CSV or Excel (.xlsx) file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and check").click()

    # The progress page, sized by its style sheet, polls the job and turns into the preview.
    expect(page.get_by_role("heading", level=1)).to_have_text("Checking contacts.csv")
    expect(page.get_by_role("progressbar")).to_have_css("height", "24px")
    expect(page.locator("#preview")).to_contain_text("1 to add")

    assert violations.found == []
