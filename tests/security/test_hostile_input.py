"""Hostile input that once gave a 500: huge page numbers, names that grow when normalised."""

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, Organisation
from jeg_contacts.extensions import db
from tests.conftest import post_signup, staff_client
from tests.organisations.records import add_organisation

HUGE = "9" * 20


@pytest.mark.parametrize(
    "page",
    ["/admin/organisations", "/admin/audit", "/admin/contacts", "/admin/announcements"],
)
def test_a_huge_page_number_in_the_back_office_is_not_a_500(app, page):
    viewer = staff_client(app, "viewer")
    assert viewer.get(f"{page}?page={HUGE}").status_code in (200, 404)
    assert viewer.get(f"{page}?page=-{HUGE}").status_code in (200, 404)


def test_a_huge_page_number_of_an_organisations_contacts_is_not_a_500(app):
    organisation_id = add_organisation(app, "Danube Commission", country="AT")
    viewer = staff_client(app, "viewer")
    response = viewer.get(f"/admin/organisations/{organisation_id}?page={HUGE}")
    assert response.status_code in (200, 404)


# NFKD turns one Hangul syllable into three letters and the ligature U+FDFA into eighteen, so
# a name within the form's limits used to give a search key longer than its column (PostgreSQL:
# a 500 on sign-up).
EXPANDING_NAMES = {"given_name": "김" * 70, "family_name": "\ufdfa" * 20}


def test_names_that_expand_when_normalised_still_sign_up(app, client):
    response = post_signup(
        client, app, **EXPANDING_NAMES, organisation_name="\ufdfa" * 60, email="kim@example.org"
    )
    assert response.status_code == 302
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        assert contact.given_name == EXPANDING_NAMES["given_name"]
        assert len(contact.search_name) <= Contact.__table__.c.search_name.type.length
        name_column = Organisation.__table__.c.normalised_name
        assert len(contact.organisation.normalised_name) <= name_column.type.length
