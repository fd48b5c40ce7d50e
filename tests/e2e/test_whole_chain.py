"""Sign-up, confirmation and an announcement through the whole chain: Chromium, gunicorn,
the database, `flask worker`, Postfix with STARTTLS and a login, and the mail that arrives."""

import re
import urllib.request

import sqlalchemy as sa
from playwright.sync_api import expect

from jeg_contacts.contacts.models import ConsentAction, Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import STAFF_PASSWORD, create_staff, html_body, text_body
from tests.e2e.conftest import Server
from tests.mailing.conftest import add_contacts
from tests.peers.postfix import PostfixRelay
from tests.postfix.conftest import ANNOUNCEMENT, READERS, unsubscribe_url

FRENCH_ADDRESS, FRENCH_NAME = READERS["fr"]


def sign_up_in_french(page, server: Server) -> None:
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Français").click()
    page.get_by_role("link", name=re.compile("Abonnez-vous")).click()
    page.get_by_label("Nom de l'organisation").fill("Ministère de la Transition écologique")
    page.get_by_label("Type d'organisation").select_option("national_authority")
    page.get_by_label("Pays de l'organisation").select_option("FR")
    page.get_by_label("Prénom").fill(FRENCH_NAME)
    page.get_by_label("Nom de famille").fill("Lefèvre")
    page.get_by_label("Adresse électronique").fill(FRENCH_ADDRESS)
    page.get_by_label("Sécurité des terminaux pétroliers").check()
    page.get_by_label(re.compile("J'accepte que le secrétariat")).check()
    page.get_by_role("button", name="S'abonner").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Consultez votre boîte de réception")


def compose_and_send(page, server: Server) -> None:
    """An editor writes the announcement in three languages and sends it to everyone."""
    create_staff(server.app, "editor@unece.test", "editor")
    page.goto(f"{server.url}/admin/announcements/new")
    page.get_by_label("Email").fill("editor@unece.test")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New announcement")
    for language, name in (("en", None), ("fr", "French"), ("ru", "Russian")):
        if name:
            page.locator("summary", has_text=f"{name} version").click()
        page.locator(f"#subject_{language}").fill(getattr(ANNOUNCEMENT, f"subject_{language}"))
        page.locator(f"#body_{language}").fill(getattr(ANNOUNCEMENT, f"body_{language}"))
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    page.get_by_role("link", name="Send or schedule…").click()
    page.get_by_role("button", name="Send now to 3 recipients").click()
    # The worker is another process: the page polls until it has sent everything.
    expect(page.locator("#progress-summary")).to_have_text("3 of 3 done (100%)", timeout=30_000)


def test_signup_confirmation_and_announcement_through_the_whole_chain(
    server: Server, postfix: PostfixRelay, browser, page
) -> None:
    sign_up_in_french(page, server)

    [confirmation] = postfix.wait_for(1, timeout=20)
    assert str(confirmation["To"]) == f"{FRENCH_NAME} Lefèvre <{FRENCH_ADDRESS}>"
    assert str(confirmation["Subject"]).startswith("Veuillez confirmer votre abonnement")
    link = re.search(rf"{re.escape(server.url)}/confirm/\S+", text_body(confirmation)).group(0)
    assert f'href="{link}"' in html_body(confirmation)
    page.goto(link)
    page.get_by_role("button", name="Confirmer mon abonnement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre abonnement est confirmé")

    for language in ("en", "ru"):
        address, given_name = READERS[language]
        add_contacts(server.app, [address], language=language, given_name=given_name)
    staff = browser.new_context(locale="en-GB")
    try:
        compose_and_send(staff.new_page(), server)
    finally:
        staff.close()

    announcements = {str(m["To"].addresses[0].addr_spec): m for m in postfix.wait_for(4)[1:]}
    assert sorted(announcements) == sorted(address for address, _name in READERS.values())
    for language, (address, given_name) in READERS.items():
        message = announcements[address]
        assert any("(Postfix)" in str(line) for line in message.get_all("Received"))
        assert str(message["From"]) == "JEG secretariat <jeg@unece.test>"
        assert str(message["Subject"]) == getattr(ANNOUNCEMENT, f"subject_{language}")
        body = getattr(ANNOUNCEMENT, f"body_{language}").replace("{{ given_name }}", given_name)
        for paragraph in body.split("\n\n"):
            assert paragraph in text_body(message)
            assert paragraph in html_body(message)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The French subscriber's mail client unsubscribes in one click (RFC 8058): a POST without
    # cookies to the address in the header, over HTTP to gunicorn.
    url = unsubscribe_url(announcements[FRENCH_ADDRESS])
    assert url.startswith(f"{server.url}/unsubscribe/")
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    with server.app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email == FRENCH_ADDRESS))
        assert contact.status is ContactStatus.UNSUBSCRIBED
        assert contact.consent_events[-1].action is ConsentAction.UNSUBSCRIBE
        assert contact.consent_events[-1].source.startswith("one-click")
