"""A secretariat editor works in the back office in a real browser."""

import re

from playwright.sync_api import expect

from tests.conftest import STAFF_PASSWORD, create_staff
from tests.directory.conftest import make_contact


def test_log_in_filter_open_edit_and_see_the_audit_entry(live_server, page):
    app = live_server.app
    create_staff(app, "editor@unece.test", "editor")
    make_contact(app, given_name="Zoë", family_name="Müller", email="zoe.mueller@example.org")
    make_contact(app, given_name="Ivan", family_name="Petrov", organisation_country="KZ")
    make_contact(app, given_name="Anna", family_name="Mueller-Lang", organisation_country="AT")

    page.goto(f"{live_server.url}/admin/contacts")
    expect(page).to_have_url(re.compile(r"/admin/login"))
    page.get_by_label("Email").fill("editor@unece.test")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")

    # Accent-insensitive search, then the filter lands in the URL.
    page.get_by_label("Search").fill("muller")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"[?&]q=muller"))
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name=re.compile("Müller")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Zoë Müller")

    page.get_by_role("link", name="Edit contact").click()
    page.get_by_label("Job title (optional)").fill("Head of industrial safety")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Zoë Müller")
    history = page.locator("section", has=page.get_by_role("heading", name="History"))
    expect(history).to_contain_text("editor@unece.test")
    expect(history).to_contain_text("Head of industrial safety")
