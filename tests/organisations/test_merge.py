"""Merging duplicate organisations: contacts move, nothing is lost, all is audited."""

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, Organisation
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.organisations.merging import merge_organisations
from tests.conftest import audit_entries, csrf_token
from tests.organisations.records import (
    add_contact,
    add_organisation,
    get_organisation,
)


def contacts_of(app, organisation_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Contact.id)
                .where(Contact.organisation_id == organisation_id)
                .order_by(Contact.id)
            )
        )


def post_merge(client, kept: int, other: int):
    token = csrf_token(client, f"/admin/organisations/{kept}/merge/{other}")
    return client.post(f"/admin/organisations/{kept}/merge/{other}", data={"csrf_token": token})


def test_choosing_the_duplicate_suggests_same_names_first(app, editor_client):
    kept = add_organisation(app, "Université de Genève", "university", "CH")
    twin = add_organisation(app, "Universite de Geneve", "university", None)
    add_organisation(app, "Geneva Water Board", "local_authority", "CH")

    page = editor_client.get(f"/admin/organisations/{kept}/merge").text
    assert f'href="/admin/organisations/{kept}/merge/{twin}"' in page
    assert "Geneva Water Board" not in page
    assert f'href="/admin/organisations/{kept}/merge/{kept}"' not in page

    searched = editor_client.get(f"/admin/organisations/{kept}/merge?q=geneva").text
    assert "Geneva Water Board" in searched and "Universite de Geneve" not in searched
    by_number = editor_client.get(f"/admin/organisations/{kept}/merge?q=%23{twin}").text
    assert f'href="/admin/organisations/{kept}/merge/{twin}"' in by_number
    nothing = editor_client.get(f"/admin/organisations/{kept}/merge?q=zzz").text
    assert "No other organisation matches" in nothing


def test_confirmation_shows_both_and_how_many_contacts_move(app, editor_client):
    kept = add_organisation(app, "Umweltbundesamt", "national_authority", "DE")
    other = add_organisation(app, "Umwelt Bundesamt", "national_authority", "DE", "https://uba.de")
    add_contact(app, kept, "Anna", "Keller")
    for number in range(3):
        add_contact(app, other, "Person", f"Other{number}")

    page = editor_client.get(f"/admin/organisations/{kept}/merge/{other}").text
    assert "Merge Umwelt Bundesamt into Umweltbundesamt?" in page
    assert "<strong>3 contact(s)</strong> move" in page
    assert "which will then have 4" in page
    assert "takes the website https://uba.de" in page
    assert f'action="/admin/organisations/{kept}/merge/{other}"' in page
    # Nothing happens on GET.
    assert get_organisation(app, other) is not None


def test_merge_moves_contacts_fills_gaps_deletes_the_duplicate_and_audits(app, editor_client):
    kept = add_organisation(app, "Umweltbundesamt", "national_authority", "DE")
    other = add_organisation(app, "UBA", "national_authority", "DE", "https://www.uba.de")
    anna = add_contact(app, kept, "Anna", "Keller")
    moved = [add_contact(app, other, "Person", f"Other{number}") for number in range(3)]
    bystander_org = add_organisation(app, "Elsewhere", "ngo", "FR")
    bystander = add_contact(app, bystander_org, "Not", "Moved")
    with app.app_context():
        versions = dict(db.session.execute(sa.select(Contact.id, Contact.version)).all())

    response = post_merge(editor_client, kept, other)

    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/organisations/{kept}"
    assert get_organisation(app, other) is None
    assert contacts_of(app, kept) == sorted([anna, *moved])
    assert contacts_of(app, bystander_org) == [bystander]
    saved = get_organisation(app, kept)
    assert (saved.name, saved.website) == ("Umweltbundesamt", "https://www.uba.de")
    with app.app_context():
        new_versions = dict(db.session.execute(sa.select(Contact.id, Contact.version)).all())
    # Open contact edit forms notice the move; untouched contacts keep their version.
    assert all(new_versions[contact_id] == versions[contact_id] + 1 for contact_id in moved)
    assert new_versions[anna] == versions[anna]
    assert new_versions[bystander] == versions[bystander]

    [merged] = audit_entries(app, "organisation.merged")
    assert merged.entity_id == kept and merged.actor == "editor@unece.test"
    assert f"UBA (#{other})" in merged.summary and f"Umweltbundesamt (#{kept})" in merged.summary
    assert merged.changes["moved_contact_ids"] == ", ".join(str(i) for i in moved)
    assert merged.changes["website"] == [None, "https://www.uba.de"]
    [gone] = audit_entries(app, "organisation.merged_away")
    assert gone.entity_id == other
    assert gone.changes["name"] == ["UBA", None]
    per_contact = audit_entries(app, "contact.organisation_changed")
    assert sorted(entry.entity_id for entry in per_contact) == moved
    assert all(
        entry.changes
        == {"organisation": ["UBA", "Umweltbundesamt"], "organisation_id": [other, kept]}
        for entry in per_contact
    )

    page = editor_client.get(f"/admin/organisations/{kept}").text
    assert f"Merged UBA (#{other}) into Umweltbundesamt" in page
    assert "organisation.merged" in page


def test_merge_keeps_the_kept_website_and_takes_a_missing_country(app, editor_client):
    kept = add_organisation(app, "Sava Commission", "river_basin_commission", None, "https://a.org")
    other = add_organisation(
        app, "Sava Commission", "river_basin_commission", "HR", "https://b.org"
    )
    assert post_merge(editor_client, kept, other).status_code == 302
    saved = get_organisation(app, kept)
    assert (saved.website, saved.country) == ("https://a.org", "HR")


def test_merge_does_not_take_a_country_that_would_duplicate_a_third(app, editor_client):
    kept = add_organisation(app, "Sava Commission", "river_basin_commission", None)
    other = add_organisation(app, "Sava Commision", "river_basin_commission", "HR")
    add_organisation(app, "SAVA COMMISSION", "river_basin_commission", "HR")
    assert post_merge(editor_client, kept, other).status_code == 302
    assert get_organisation(app, kept).country is None
    assert get_organisation(app, other) is None


def test_merging_an_organisation_with_itself_is_refused(app, editor_client):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    contact = add_contact(app, organisation_id, "Anna", "Keller")

    page = editor_client.get(f"/admin/organisations/{organisation_id}/merge/{organisation_id}")
    assert page.status_code == 400
    assert "cannot be merged with itself" in page.text

    response = post_merge_raw(editor_client, organisation_id, organisation_id)
    assert response.status_code == 400
    assert "cannot be merged with itself" in response.text
    assert get_organisation(app, organisation_id) is not None
    assert contacts_of(app, organisation_id) == [contact]
    assert audit_entries(app, "organisation.merged") == []


def test_merge_service_refuses_self_merge(app):
    organisation_id = add_organisation(app, "Umweltbundesamt")
    with app.app_context():
        organisation = db.session.get(Organisation, organisation_id)
        with pytest.raises(ValidationFailed, match="itself"):
            merge_organisations(organisation, organisation)


def test_merge_of_an_organisation_without_contacts(app, editor_client):
    kept = add_organisation(app, "Umweltbundesamt")
    other = add_organisation(app, "UBA")
    assert post_merge(editor_client, kept, other).status_code == 302
    assert get_organisation(app, other) is None
    [merged] = audit_entries(app, "organisation.merged")
    assert merged.changes["moved_contact_ids"] == "none"


def test_merge_with_an_unknown_organisation_is_404(app, editor_client):
    kept = add_organisation(app, "Umweltbundesamt")
    assert editor_client.get(f"/admin/organisations/{kept}/merge/9999").status_code == 404
    assert post_merge_raw(editor_client, kept, 9999).status_code == 404
    assert post_merge_raw(editor_client, 9999, kept).status_code == 404


def test_viewers_cannot_merge(app, viewer_client):
    kept = add_organisation(app, "Umweltbundesamt")
    other = add_organisation(app, "UBA")
    assert viewer_client.get(f"/admin/organisations/{kept}/merge").status_code == 403
    assert viewer_client.get(f"/admin/organisations/{kept}/merge/{other}").status_code == 403
    assert post_merge_raw(viewer_client, kept, other).status_code == 403
    assert get_organisation(app, other) is not None


def post_merge_raw(client, kept: int, other: int):
    """POST a merge without first opening its confirmation page."""
    token = csrf_token(client, "/admin/account/password")
    return client.post(f"/admin/organisations/{kept}/merge/{other}", data={"csrf_token": token})


def test_the_audit_log_names_what_was_merged_in_words(app, editor_client):
    kept = add_organisation(app, "Umweltbundesamt", "national_authority", "DE", "https://uba.de")
    other = add_organisation(app, "UBA", "ngo", "DE")

    assert post_merge(editor_client, kept, other).status_code == 302

    [merged] = audit_entries(app, "organisation.merged")
    assert merged.changes["merged_organisation"] == (
        f"#{other}: name UBA; type of organisation Non-governmental organisation; "
        "country Germany; website (none)"
    )
    page = editor_client.get("/admin/audit").text
    assert "None" not in page and "stakeholder_type" not in page
    assert "Name: <del>UBA</del> → <ins>(none)</ins>" in page  # the merged-away record
