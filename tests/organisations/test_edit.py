"""Editing an organisation: validation, duplicates, concurrent edits, audit."""

import re

from tests.conftest import audit_entries, csrf_token
from tests.organisations.records import add_organisation, get_organisation


def edit_form(client, organisation_id: int, **changes: str) -> dict[str, str]:
    """The edit form as the page fills it in, with some fields changed."""
    page = client.get(f"/admin/organisations/{organisation_id}/edit").text
    token = re.search(r'id="loaded_token" name="loaded_token" type="hidden" value="([^"]*)"', page)
    assert token, "no loaded_token on the edit page"
    current = get_organisation(client.application, organisation_id)
    form = {
        "csrf_token": csrf_token(client, f"/admin/organisations/{organisation_id}/edit"),
        "loaded_token": token.group(1),
        "name": current.name,
        "stakeholder_type": current.stakeholder_type.value,
        "country": current.country or "",
        "website": current.website or "",
    }
    form.update(changes)
    return form


def post_edit(client, organisation_id: int, **changes: str):
    return client.post(
        f"/admin/organisations/{organisation_id}/edit",
        data=edit_form(client, organisation_id, **changes),
    )


def test_edit_form_is_filled_in_and_labelled(app, editor_client):
    organisation_id = add_organisation(
        app, "Umweltbundesamt", "national_authority", "DE", "https://www.uba.de"
    )
    page = editor_client.get(f"/admin/organisations/{organisation_id}/edit").text
    for field in ("name", "stakeholder_type", "country", "website"):
        assert f'<label for="{field}">' in page
    assert 'value="Umweltbundesamt"' in page
    assert '<option selected value="national_authority">' in page
    assert '<option selected value="DE">Germany</option>' in page
    assert 'value="https://www.uba.de"' in page


def test_editor_saves_changes_and_they_are_audited(app, editor_client):
    organisation_id = add_organisation(app, "Umweltbundesamt", "national_authority", "DE")
    response = post_edit(
        editor_client,
        organisation_id,
        name="  Umweltbundesamt (UBA) ",
        stakeholder_type="other",
        country="AT",
        website="https://www.umweltbundesamt.at",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/organisations/{organisation_id}"

    saved = get_organisation(app, organisation_id)
    assert saved.name == "Umweltbundesamt (UBA)"
    assert saved.normalised_name == "umweltbundesamt (uba)"
    assert (saved.stakeholder_type.value, saved.country) == ("other", "AT")
    assert saved.website == "https://www.umweltbundesamt.at"

    [entry] = audit_entries(app, "organisation.updated")
    assert (entry.entity_type, entry.entity_id, entry.actor) == (
        "organisation",
        organisation_id,
        "editor@unece.test",
    )
    assert entry.changes == {
        "country": ["DE", "AT"],
        "name": ["Umweltbundesamt", "Umweltbundesamt (UBA)"],
        "stakeholder_type": ["national_authority", "other"],
        "website": [None, "https://www.umweltbundesamt.at"],
    }


def test_saving_without_changes_writes_no_audit_entry(app, editor_client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    response = post_edit(editor_client, organisation_id)
    assert response.status_code == 302
    assert audit_entries(app, "organisation.updated") == []


def test_country_can_be_cleared_and_website_removed(app, editor_client):
    organisation_id = add_organisation(app, "Umweltbundesamt", website="https://uba.de")
    assert post_edit(editor_client, organisation_id, country="", website=" ").status_code == 302
    saved = get_organisation(app, organisation_id)
    assert (saved.country, saved.website) == (None, None)


def test_invalid_input_is_refused_with_a_clear_message(app, editor_client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    cases = [
        ({"name": ""}, "Enter the organisation"),
        ({"name": "Line one\nline two"}, "single line"),
        ({"name": "x" * 201}, "200"),
        ({"stakeholder_type": "martian"}, "Not a valid choice"),
        ({"country": "XX"}, "Not a valid choice"),
        ({"website": "javascript:alert(1)"}, "starting with https:// or http://"),
        ({"website": "ftp://example.org"}, "starting with https:// or http://"),
        ({"website": "https://"}, "starting with https:// or http://"),
        ({"website": "https://exa mple.org"}, "starting with https:// or http://"),
        ({"website": "https://example.org/\nx"}, "single line"),
        ({"website": "https://example.org/" + "x" * 300}, "300"),
    ]
    for changes, message in cases:
        response = post_edit(editor_client, organisation_id, **changes)
        assert response.status_code == 400, changes
        page = response.get_data(as_text=True)
        assert message in page, (changes, message)
        assert 'aria-invalid="true"' in page, changes
    assert get_organisation(app, organisation_id).name == "Umweltbundesamt"
    assert audit_entries(app, "organisation.updated") == []


def test_renaming_to_an_existing_organisation_suggests_a_merge(app, editor_client):
    existing = add_organisation(app, "Université de Genève", "university", "CH")
    organisation_id = add_organisation(app, "University of Geneva", "university", "CH")

    response = post_edit(editor_client, organisation_id, name="UNIVERSITE DE GENEVE")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f"Université de Genève (#{existing}) already has this name in this country" in page
    assert f'href="/admin/organisations/{organisation_id}/merge/{existing}"' in page
    assert f'href="/admin/organisations/{existing}/merge/{organisation_id}"' in page
    assert get_organisation(app, organisation_id).name == "University of Geneva"


def test_same_name_in_another_country_is_allowed(app, editor_client):
    add_organisation(app, "Ministry of Environment", "national_authority", "AM")
    organisation_id = add_organisation(app, "Ministry of Ecology", "national_authority", "GE")
    response = post_edit(editor_client, organisation_id, name="Ministry of Environment")
    assert response.status_code == 302
    assert get_organisation(app, organisation_id).name == "Ministry of Environment"


def test_changing_only_capitals_of_its_own_name_is_not_a_duplicate(app, editor_client):
    organisation_id = add_organisation(app, "umweltbundesamt")
    assert post_edit(editor_client, organisation_id, name="Umweltbundesamt").status_code == 302
    assert get_organisation(app, organisation_id).name == "Umweltbundesamt"


def test_an_edit_made_meanwhile_is_not_silently_overwritten(app, editor_client, admin_client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    stale = edit_form(editor_client, organisation_id, website="https://editor.example")
    assert post_edit(admin_client, organisation_id, name="UBA").status_code == 302

    response = editor_client.post(f"/admin/organisations/{organisation_id}/edit", data=stale)

    assert response.status_code == 400
    assert "changed this organisation while you were editing it" in response.text
    assert "<dt>Saved name</dt><dd>UBA</dd>" in response.text
    assert get_organisation(app, organisation_id).website is None
    # Saving again from the refreshed form keeps the editor's version, knowingly.
    fresh_token = re.search(r'name="loaded_token" type="hidden" value="([^"]*)"', response.text)
    stale["loaded_token"] = fresh_token.group(1)
    assert (
        editor_client.post(f"/admin/organisations/{organisation_id}/edit", data=stale).status_code
        == 302
    )
    assert get_organisation(app, organisation_id).website == "https://editor.example"


def test_viewers_cannot_edit(app, viewer_client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    token = csrf_token(viewer_client, "/admin/account/password")
    assert viewer_client.get(f"/admin/organisations/{organisation_id}/edit").status_code == 403
    response = viewer_client.post(
        f"/admin/organisations/{organisation_id}/edit",
        data={"csrf_token": token, "name": "Hijacked", "stakeholder_type": "ngo"},
    )
    assert response.status_code == 403
    assert get_organisation(app, organisation_id).name == "Umweltbundesamt"


def test_editing_an_unknown_organisation_is_404(editor_client):
    assert editor_client.get("/admin/organisations/9999/edit").status_code == 404


def test_clearing_the_country_onto_a_countryless_namesake_is_a_duplicate(app, editor_client):
    existing = add_organisation(app, "Sava Commission", "river_basin_commission", None)
    organisation_id = add_organisation(app, "Sava Commission", "river_basin_commission", "HR")
    response = post_edit(editor_client, organisation_id, country="")
    assert response.status_code == 400
    assert f"(#{existing}) already has this name" in response.text
    assert get_organisation(app, organisation_id).country == "HR"
