"""A stakeholder signs up in French in a real browser, then confirms from the email."""

import re

from playwright.sync_api import expect

from tests.conftest import outbox_messages, text_body


def test_public_signup_in_french(live_server, page):
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.get_by_role("link", name=re.compile("Abonnez-vous")).click()

    page.get_by_label("Nom de l'organisation").fill(
        "Commission internationale pour la protection du Rhin"
    )
    page.get_by_label("Type d'organisation").select_option("river_basin_commission")
    page.get_by_label("Pays de l'organisation").select_option("FR")
    page.get_by_label("Prénom").fill("Élodie")
    page.get_by_label("Nom de famille").fill("Lefèvre")
    page.get_by_label("Adresse électronique").fill("elodie.lefevre@example.org")
    page.get_by_label("Sécurité des terminaux pétroliers").check()
    page.get_by_label("Exercices internationaux d'intervention").check()

    # Forgetting the consent is caught with a clear, translated message.
    page.get_by_role("button", name="S'abonner").click()
    expect(page.get_by_role("alert")).to_contain_text("Cochez la case")
    expect(page.get_by_label("Prénom")).to_have_value("Élodie")

    # Switching language there keeps the person on the form with what they typed.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_label("Given name")).to_have_value("Élodie")
    expect(page.get_by_label("Safety of oil terminals")).to_be_checked()
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_label("Adresse électronique")).to_have_value("elodie.lefevre@example.org")

    page.get_by_label(re.compile("J'accepte que le secrétariat")).check()
    page.get_by_role("button", name="S'abonner").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Consultez votre boîte de réception")

    [message] = outbox_messages(live_server.app)
    assert "Veuillez confirmer" in str(message["Subject"])
    link = re.search(r"http://\S+/confirm/\S+", text_body(message)).group(0)
    page.goto(link)
    # Opening the link only shows the details; the one button confirms.
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirmez votre abonnement")
    expect(page.get_by_text("Élodie Lefèvre")).to_be_visible()
    page.get_by_role("button", name="Confirmer mon abonnement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre abonnement est confirmé")
    expect(page.get_by_role("listitem").filter(has_text="terminaux pétroliers")).to_be_visible()
