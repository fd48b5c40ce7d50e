"""The organisation list and detail pages."""

import re

from jeg_contacts.contacts.models import Contact, Organisation
from jeg_contacts.extensions import db
from tests.organisations.records import add_contact, add_organisation


def listed(client, url: str) -> list[str]:
    """Organisation names in the order the list page shows them."""
    response = client.get(url)
    assert response.status_code == 200
    return re.findall(r'<td><a href="/admin/organisations/\d+">([^<]+)</a></td>', response.text)


def test_search_ignores_accents_case_and_word_order(app, viewer_client):
    add_organisation(app, "Université de Genève", "university", "CH")
    add_organisation(app, "Umweltbundesamt", "national_authority", "DE")
    add_organisation(app, "Geneva Water Board", "local_authority", "CH")

    assert listed(viewer_client, "/admin/organisations?q=geneve") == ["Université de Genève"]
    assert listed(viewer_client, "/admin/organisations?q=GENÈVE+universite") == [
        "Université de Genève"
    ]
    assert listed(viewer_client, "/admin/organisations?q=umwelt") == ["Umweltbundesamt"]


def test_search_treats_like_wildcards_as_text(app, viewer_client):
    add_organisation(app, "Water 100% Safe", "ngo", "FR")
    add_organisation(app, "Water Board", "ngo", "FR")

    assert listed(viewer_client, "/admin/organisations?q=100%25") == ["Water 100% Safe"]
    assert listed(viewer_client, "/admin/organisations?q=_") == []


def test_filters_by_type_and_country_and_keeps_them_in_sort_links(app, viewer_client):
    add_organisation(app, "Danube Commission", "river_basin_commission", "AT")
    add_organisation(app, "Rhine Commission", "river_basin_commission", "DE")
    add_organisation(app, "Umweltbundesamt", "national_authority", "DE")

    assert listed(viewer_client, "/admin/organisations?type=river_basin_commission") == [
        "Danube Commission",
        "Rhine Commission",
    ]
    assert listed(viewer_client, "/admin/organisations?country=DE") == [
        "Rhine Commission",
        "Umweltbundesamt",
    ]
    page = viewer_client.get("/admin/organisations?type=river_basin_commission&country=DE").text
    assert re.findall(r'<td><a href="/admin/organisations/\d+">([^<]+)</a>', page) == [
        "Rhine Commission"
    ]
    # Sorting keeps the filters, and the chosen filters stay selected in the form.
    assert "type=river_basin_commission" in page and "country=DE" in page
    assert re.search(r"sort=contacts[^\"]*country=DE|country=DE[^\"]*sort=contacts", page)
    assert '<option value="DE" selected>Germany</option>' in page


def test_unknown_filter_values_are_ignored_not_an_error(app, viewer_client):
    add_organisation(app, "Umweltbundesamt")
    url = "/admin/organisations?type=martian&country=XYZ&sort=shoe+size&page=abc"
    assert listed(viewer_client, url) == ["Umweltbundesamt"]


def test_sorts_by_contact_count_type_and_country_name(app, viewer_client):
    small = add_organisation(app, "Alpha Agency", "university", "CH")
    large = add_organisation(app, "Beta Board", "ngo", "DE")
    add_organisation(app, "Gamma Group", "operator", "AT")
    for number in range(3):
        add_contact(app, large, "Person", f"Large{number}")
    add_contact(app, small, "Person", "Small")

    page = viewer_client.get("/admin/organisations?sort=-contacts").text
    names = re.findall(r'<td><a href="/admin/organisations/\d+">([^<]+)</a>', page)
    assert names == ["Beta Board", "Alpha Agency", "Gamma Group"]
    counts = re.findall(r'<td class="number">(\d+)</td>', page)
    assert counts == ["3", "1", "0"]
    assert listed(viewer_client, "/admin/organisations?sort=contacts") == [
        "Gamma Group",
        "Alpha Agency",
        "Beta Board",
    ]
    # Types sort by their label: NGO < Operator < University.
    assert listed(viewer_client, "/admin/organisations?sort=type") == [
        "Beta Board",
        "Gamma Group",
        "Alpha Agency",
    ]
    # Countries sort by name, not by code: Austria, Germany, Switzerland (AT, DE, CH).
    assert listed(viewer_client, "/admin/organisations?sort=country") == [
        "Gamma Group",
        "Beta Board",
        "Alpha Agency",
    ]
    assert listed(viewer_client, "/admin/organisations?sort=-name") == [
        "Gamma Group",
        "Beta Board",
        "Alpha Agency",
    ]


def test_paginates_fifty_a_page(app, viewer_client):
    with app.app_context():
        db.session.add_all(
            Organisation(
                name=f"Organisation {number:03d}",
                normalised_name=f"organisation {number:03d}",
                stakeholder_type="ngo",
                country="FR",
            )
            for number in range(120)
        )
        db.session.commit()

    first = listed(viewer_client, "/admin/organisations")
    third = listed(viewer_client, "/admin/organisations?page=3")
    assert len(first) == 50 and first[0] == "Organisation 000"
    assert third == [f"Organisation {number:03d}" for number in range(100, 120)]
    assert "Page 1 of 3" in viewer_client.get("/admin/organisations").text

    beyond = viewer_client.get("/admin/organisations?page=9")
    assert beyond.status_code == 200
    assert "There is no page 9" in beyond.text


def test_empty_states(app, viewer_client):
    assert "No organisations yet" in viewer_client.get("/admin/organisations").text
    add_organisation(app, "Umweltbundesamt")
    page = viewer_client.get("/admin/organisations?q=nothing+like+this").text
    assert "No organisation matches these filters" in page


def test_contact_counts_use_one_grouped_query_whatever_the_page_size(app, viewer_client):
    from sqlalchemy import event

    for number in range(30):
        organisation_id = add_organisation(app, f"Organisation {number}", "ngo", "FR")
        add_contact(app, organisation_id, "Person", f"Number{number}")
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def remember(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        assert viewer_client.get("/admin/organisations?sort=-contacts").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    on_contacts = [s for s in statements if "FROM contacts" in s]
    assert len(on_contacts) <= 3, on_contacts  # page query, total count, page counts


def test_detail_lists_contacts_with_links_and_history(app, editor_client):
    organisation_id = add_organisation(
        app, "Umweltbundesamt", website="https://www.umweltbundesamt.de"
    )
    zoe = add_contact(app, organisation_id, "Zoë", "Müller")
    pending = add_contact(app, organisation_id, "Jan", "Novak", status="pending")
    add_contact(app, None, "Not", "Here")
    editor_client.post(
        f"/admin/organisations/{organisation_id}/edit",
        data={
            "csrf_token": _token(editor_client, organisation_id),
            "name": "Umweltbundesamt (UBA)",
            "stakeholder_type": "national_authority",
            "country": "DE",
            "website": "https://www.umweltbundesamt.de",
        },
    )

    page = editor_client.get(f"/admin/organisations/{organisation_id}").text
    assert "<h1>Umweltbundesamt (UBA)</h1>" in page
    assert f'href="/admin/contacts/{zoe}">Zoë Müller</a>' in page
    assert f'href="/admin/contacts/{pending}">Jan Novak</a>' in page
    assert "status-pending" in page
    assert "Not Here" not in page
    assert "https://www.umweltbundesamt.de" in page
    # The audit history shows the rename with before and after.
    assert "organisation.updated" in page
    assert "<del>Umweltbundesamt</del>" in page and "<ins>Umweltbundesamt (UBA)</ins>" in page


def test_detail_shows_edit_actions_only_to_editors(app, viewer_client, editor_client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    edit_link = f"/admin/organisations/{organisation_id}/edit"
    assert edit_link not in viewer_client.get(f"/admin/organisations/{organisation_id}").text
    assert edit_link in editor_client.get(f"/admin/organisations/{organisation_id}").text


def test_detail_of_an_empty_or_unknown_organisation(app, viewer_client):
    organisation_id = add_organisation(app, "Lonely Agency")
    page = viewer_client.get(f"/admin/organisations/{organisation_id}").text
    assert "No contacts belong to this organisation" in page
    assert "No changes recorded yet" in page
    assert viewer_client.get("/admin/organisations/9999").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(app, client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    for url in ("/admin/organisations", f"/admin/organisations/{organisation_id}"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login")


def _token(client, organisation_id: int) -> str:
    from tests.conftest import csrf_token

    return csrf_token(client, f"/admin/organisations/{organisation_id}/edit")


def test_only_web_addresses_become_links(app, viewer_client):
    safe = add_organisation(app, "Safe Agency", website="https://safe.example")
    legacy = add_organisation(app, "Legacy Agency", website="javascript:alert(1)")
    listing = viewer_client.get("/admin/organisations").text
    assert '<a href="https://safe.example"' in listing
    assert 'href="javascript:' not in listing and "javascript:alert(1)" in listing
    assert 'href="javascript:' not in viewer_client.get(f"/admin/organisations/{legacy}").text
    assert safe


def test_detail_paginates_many_contacts(app, viewer_client):
    organisation_id = add_organisation(app, "Big Agency")
    with app.app_context():
        db.session.add_all(
            Contact(
                given_name="Person",
                family_name=f"{number:02d}",
                email=f"p{number}@example.org",
                email_key=f"p{number}@example.org",
                organisation_id=organisation_id,
                link_secret="secret",
            )
            for number in range(55)
        )
        db.session.commit()
    first = viewer_client.get(f"/admin/organisations/{organisation_id}").text
    second = viewer_client.get(f"/admin/organisations/{organisation_id}?page=2").text
    assert first.count("/admin/contacts/") == 50 and "<dd>55</dd>" in first
    assert second.count("/admin/contacts/") == 5 and "Person 54" in second
