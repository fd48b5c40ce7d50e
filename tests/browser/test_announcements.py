"""An editor writes, previews and sends an announcement in a real browser, and watches it go."""

import re
import threading

from playwright.sync_api import expect

from jeg_contacts.mailing.worker import DeliveryWorker
from tests.conftest import STAFF_PASSWORD, create_staff, outbox_messages
from tests.mailing.conftest import add_contacts


def test_compose_preview_count_send_and_watch_progress(live_server, page):
    app = live_server.app
    create_staff(app, "editor@unece.test", "editor")
    add_contacts(app, ["olga@example.org", "ivan@example.org"], language="ru", country="KZ")
    add_contacts(app, ["zoe@example.org"], language="en")

    page.goto(f"{live_server.url}/admin/announcements/new")
    page.get_by_label("Email").fill("editor@unece.test")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New announcement")

    count = page.locator("#recipient-count")
    expect(count).to_have_text("3 active contacts")
    page.get_by_label("Русский").check()
    expect(count).to_have_text("2 active contacts")  # updated without reloading

    page.get_by_role("textbox", name="Subject", exact=True).fill("Workshop in Almaty")
    page.get_by_role("textbox", name="Text", exact=True).fill(
        "Dear {{ given_name }},\n\n**See you** there."
    )
    preview = page.frame_locator("#preview-html")
    expect(preview.locator("body")).to_contain_text("Dear Anna,")
    expect(preview.locator("strong")).to_have_text("See you")
    page.get_by_label("Preview in").select_option("fr")
    expect(page.locator("#preview-fallback")).to_be_visible()

    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    page.get_by_role("link", name="Send or schedule…").click()
    page.get_by_role("button", name="Send now to 2 recipients").click()
    expect(page.locator("#progress-summary")).to_have_text("0 of 2 done (0%)")

    worker = DeliveryWorker(app, poll_seconds=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        # The page polls the status and updates itself.
        expect(page.locator("#progress-summary")).to_have_text("2 of 2 done (100%)")
        expect(page.locator("#progress-finished")).to_be_visible()
        expect(page.locator("#send-progress")).to_have_attribute("value", "2")
    finally:
        worker.stop()
        thread.join()
    recipients = sorted(str(m["To"].addresses[0].addr_spec) for m in outbox_messages(app))
    assert recipients == ["ivan@example.org", "olga@example.org"]
    expect(page.locator("#progress-finished")).to_contain_text(re.compile("sent"))
