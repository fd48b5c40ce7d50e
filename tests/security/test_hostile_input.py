"""Hostile query arguments in the back office: a clear page, never a 500."""

import pytest

from tests.conftest import staff_client
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
