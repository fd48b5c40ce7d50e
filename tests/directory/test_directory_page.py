"""The directory's pages: counted and loaded a page at a time, in the chosen order."""

from jeg_contacts.audiences.services import ContactFilter
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.directory.services import directory_page
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact


def test_sorting_by_organisation_keeps_contacts_without_one(app):
    with_organisation = make_contact(app, family_name="With")
    without = make_contact(app, family_name="Without")
    with app.app_context():
        db.session.get(Contact, without).organisation = None
        db.session.commit()
        page = directory_page(ContactFilter(), "organisation", 1)

    assert page.total == 2
    assert {contact.id for contact in page.items} == {with_organisation, without}


def test_directory_page_counts_everything_and_loads_fifty(app):
    with app.app_context():
        for number in range(55):
            db.session.add(
                Contact(
                    given_name="Person",
                    family_name=f"{number:03d}",
                    email=f"p{number}@example.org",
                    email_key=f"p{number}@example.org",
                    link_secret="x",
                    status=ContactStatus.ACTIVE,
                )
            )
        db.session.commit()
        first = directory_page(ContactFilter(), "name", 1)
        second = directory_page(ContactFilter(), "name", 2)
        beyond = directory_page(ContactFilter(), "name", 9)

    assert (first.total, len(first.items), first.pages) == (55, 50, 2)
    assert [contact.family_name for contact in second.items] == ["050", "051", "052", "053", "054"]
    assert second.total == 55
    assert beyond.items == []
    assert beyond.total == 55
