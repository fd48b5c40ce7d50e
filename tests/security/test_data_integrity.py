"""Data integrity: merging organisations must not quietly move people across countries.

"Agence de l'eau" in Belgium and "Agence de l'eau" in France are two organisations that
share a name. They are not offered as duplicates, and a merge across countries happens only
when the person merging confirms, naming both countries, that contacts move from one country
into an organisation in the other; a POST without that confirmation changes nothing.
"""

import html
import re

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, Organisation
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.organisations.merging import merge_organisations
from tests.conftest import audit_entries, csrf_token
from tests.organisations.records import add_contact, add_organisation, get_organisation

AGENCY = "Agence de l'eau"


@pytest.fixture
def agencies(app) -> dict[str, int]:
    """The French and Belgian agencies, each with contacts, and a twin with no country."""
    france = add_organisation(app, AGENCY, "national_authority", "FR")
    belgium = add_organisation(app, AGENCY, "national_authority", "BE")
    unknown = add_organisation(app, AGENCY, "national_authority", None)
    return {
        "france": france,
        "belgium": belgium,
        "unknown": unknown,
        "french contact": add_contact(app, france, "Camille", "Martin"),
        "belgian contact": add_contact(app, belgium, "Lotte", "Peeters"),
    }


def contacts_of(app, organisation_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Contact.id).where(Contact.organisation_id == organisation_id)
            )
        )


def text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def merge_links(page: str, kept: int) -> set[int]:
    return {int(other) for other in re.findall(rf"/admin/organisations/{kept}/merge/(\d+)", page)}


def post_merge(client, kept: int, other: int, **fields: str):
    token = csrf_token(client, f"/admin/organisations/{kept}/merge/{other}")
    return client.post(
        f"/admin/organisations/{kept}/merge/{other}", data={"csrf_token": token, **fields}
    )


def test_organisations_in_other_countries_are_not_suggested_as_duplicates(
    app, editor_client, agencies
):
    france = agencies["france"]

    suggested = editor_client.get(f"/admin/organisations/{france}/merge")

    # The twin without a country may be the same body; the Belgian agency is not offered.
    assert merge_links(suggested.get_data(as_text=True), france) == {agencies["unknown"]}
    assert "with this name in other countries are not suggested" in text(suggested)


def test_searching_shows_other_countries_apart_as_a_merge_across_countries(
    app, editor_client, agencies
):
    france, belgium = agencies["france"], agencies["belgium"]

    page = editor_client.get(f"/admin/organisations/{france}/merge?q=agence+eau")

    same, heading, elsewhere = page.get_data(as_text=True).partition("In other countries")
    assert heading
    assert merge_links(same, france) == {agencies["unknown"]}
    assert merge_links(elsewhere, france) == {belgium}
    assert "Belgium" in elsewhere


def test_a_merge_across_countries_asks_to_confirm_both_countries_by_name(
    app, editor_client, agencies
):
    france, belgium = agencies["france"], agencies["belgium"]

    page = text(editor_client.get(f"/admin/organisations/{france}/merge/{belgium}"))

    assert (
        "I understand this moves 1 contact(s) from Belgium into an organisation in France" in page
    )
    assert 'type="checkbox" name="confirm_countries" value="BE:FR" required' in page


@pytest.mark.parametrize(
    "fields",
    [{}, {"confirm_countries": ""}, {"confirm_countries": "FR:BE"}, {"confirm_countries": "y"}],
    ids=["crafted without it", "empty", "countries the other way round", "a bare tick"],
)
def test_a_merge_across_countries_without_the_confirmation_changes_nothing(
    app, editor_client, agencies, fields
):
    france, belgium = agencies["france"], agencies["belgium"]

    response = post_merge(editor_client, france, belgium, **fields)

    assert response.status_code == 400
    message = text(response)
    assert f"{AGENCY} (#{belgium}) is in Belgium and {AGENCY} (#{france}) in France" in message
    assert "Nothing was merged" in message
    assert get_organisation(app, belgium) is not None
    assert contacts_of(app, belgium) == [agencies["belgian contact"]]
    assert contacts_of(app, france) == [agencies["french contact"]]
    assert audit_entries(app, "organisation.merged") == []


def test_a_merge_across_countries_goes_through_once_confirmed(app, admin_client, agencies):
    france, belgium = agencies["france"], agencies["belgium"]

    response = post_merge(admin_client, france, belgium, confirm_countries="BE:FR")

    assert response.status_code == 302
    assert get_organisation(app, belgium) is None
    assert get_organisation(app, france).country == "FR"
    assert sorted(contacts_of(app, france)) == sorted(
        [agencies["french contact"], agencies["belgian contact"]]
    )
    [merged] = audit_entries(app, "organisation.merged")
    assert merged.changes["countries_confirmed"] == "from Belgium (BE) into France (FR)"


def test_a_confirmation_made_for_other_countries_is_refused(app, editor_client, agencies):
    """The page was confirmed for Belgium into France; the French record then moved."""
    france, belgium = agencies["france"], agencies["belgium"]
    token = csrf_token(editor_client, f"/admin/organisations/{france}/merge/{belgium}")
    with app.app_context():
        db.session.get(Organisation, france).country = "LU"
        db.session.commit()

    response = editor_client.post(
        f"/admin/organisations/{france}/merge/{belgium}",
        data={"csrf_token": token, "confirm_countries": "BE:FR"},
    )

    assert response.status_code == 400
    assert "is in Belgium and" in text(response) and "in Luxembourg" in text(response)
    assert get_organisation(app, belgium) is not None


def test_merges_within_a_country_or_without_one_need_no_confirmation(app, editor_client, agencies):
    other_french = add_organisation(app, "Agence de l'eau Seine", "national_authority", "FR")

    assert post_merge(editor_client, agencies["france"], other_french).status_code == 302
    assert post_merge(editor_client, agencies["france"], agencies["unknown"]).status_code == 302
    assert get_organisation(app, agencies["belgium"]) is not None


def test_the_service_itself_refuses_a_merge_across_countries(app, agencies):
    with app.app_context():
        france = db.session.get(Organisation, agencies["france"])
        belgium = db.session.get(Organisation, agencies["belgium"])

        with pytest.raises(ValidationFailed, match=r"is in Belgium and .* in France"):
            merge_organisations(france, belgium)

        assert merge_organisations(france, belgium, countries_confirmed=("BE", "FR"))
