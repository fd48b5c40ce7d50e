"""The values an audit entry or a consent event records come from one place, whether a page
writes one row or an import writes a hundred thousand."""

from jeg_contacts.contacts import services as contacts
from jeg_contacts.contacts.models import ConsentAction, Contact
from jeg_contacts.directory import services as directory
from jeg_contacts.extensions import db
from tests.directory.conftest import make_contact


def test_the_directorys_audit_snapshot_is_the_contacts_one(app):
    contact_id = make_contact(app, topics=("pipelines", "workshops-seminars"))
    with app.app_context():
        contact = db.session.get(Contact, contact_id)

        assert directory.audit_snapshot(contact) == contacts.audit_snapshot(contact)


def test_a_snapshot_of_plain_values_equals_the_contacts(app):
    contact_id = make_contact(app, topics=("pipelines", "workshops-seminars"))
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        organisation = contact.organisation

        assert contacts.snapshot_values(
            {name: getattr(contact, name) for name in contacts.AUDITED_FIELDS},
            status=contact.status,
            organisation=organisation.name,
            organisation_country=organisation.country,
            topic_slugs=[topic.slug for topic in reversed(contact.topics)],
        ) == contacts.audit_snapshot(contact)


def test_staff_consent_actions_record_no_privacy_notice():
    imported = contacts.consent_values(ConsentAction.IMPORTED, "imported by tests")
    signup = contacts.consent_values(ConsentAction.SIGNUP, "self-service", "topics: x")

    assert imported["wording_version"] is None
    assert signup["wording_version"] == contacts.PRIVACY_NOTICE_VERSION
    assert signup["detail"] == "topics: x"
