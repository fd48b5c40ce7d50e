"""An imported row obeys the sign-up rules: check_row beside apply_profile, case by case."""

import pytest

from jeg_contacts.contacts.models import Contact
from jeg_contacts.contacts.services import DETAIL_FIELDS, ProfileData, apply_profile
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.imports.mapping import Vocabulary
from jeg_contacts.imports.rows import RULE_LABELS, Base, check_row
from jeg_contacts.text import normalise_email
from tests.conftest import topic_ids

VALID = {
    "organisation_name": "  Umweltbundesamt ",
    "stakeholder_type": "national_authority",
    "organisation_country": "DE",
    "organisation_website": "https://www.uba.de",
    "salutation": "dr",
    "given_name": " Zoë ",
    "family_name": "Müller",
    "job_title": "Head of unit",
    "department": " Industrial Safety ",
    "phone": "+49 (340) 2103-0",
    "country": "AT",
    "language": "fr",
    "email": " Zoe.Mueller@Example.ORG ",
}

ONE_FAULT = [
    ("organisation_name", ""),
    ("organisation_name", "   "),
    ("organisation_name", "A <b> tag"),
    ("organisation_name", "x" * 201),
    ("organisation_name", "two\nlines"),
    ("stakeholder_type", "martians"),
    ("organisation_country", "XX"),
    ("organisation_website", "www.uba.de"),
    ("organisation_website", "https://" + "x" * 300),
    ("salutation", "king"),
    ("given_name", ""),
    ("given_name", "<script>"),
    ("family_name", "x" * 101),
    ("family_name", "tab\there"),
    ("job_title", "x" * 201),
    ("department", "x" * 201),
    ("department", "two\nlines"),
    ("phone", "call me"),
    ("phone", "1" * 41),
    ("country", "ZZ"),
    ("language", "de"),
    ("email", "not-an-address"),
    ("email", ""),
    ("email", "two@example.org\nbcc@example.org"),
]

# The import words some messages for a file rather than a form: same rule, same field.
REWORDED = {"stakeholder_type", "organisation_country", "country", "salutation", "language"}


def sign_up_outcome(app, values: dict, topics: list[int]):
    """What the sign-up rules make of `values`: the contact's fields, or the failure."""
    with app.test_request_context():
        try:
            email = normalise_email(values["email"])
            fields = {key: value for key, value in values.items() if key != "email"}
            contact = Contact(email=email)
            apply_profile(contact, ProfileData(**fields, topic_ids=topics))
        except ValidationFailed as error:
            return error
        finally:
            db.session.rollback()
        return {
            "email": email,
            "organisation_name": contact.organisation.name,
            "organisation_country": contact.organisation.country,
            "given_name": contact.given_name,
            "family_name": contact.family_name,
            "salutation": contact.salutation,
            "details": {detail.name: getattr(contact, detail.name) for detail in DETAIL_FIELDS},
            "country": contact.country,
            "language": contact.language,
            "topic_ids": tuple(topic.id for topic in contact.topics),
        }


def import_outcome(app, values: dict, topic_slugs: list[str]):
    cells = {
        "organisation" if key == "organisation_name" else key: value
        for key, value in values.items()
    }
    cells["topics"] = "; ".join(topic_slugs)
    with app.test_request_context():
        return check_row(cells, Base(language="en"), Vocabulary())


@pytest.mark.parametrize(("field", "value"), ONE_FAULT)
def test_a_row_fails_where_sign_up_fails(app, field, value):
    values = VALID | {field: value}

    expected = sign_up_outcome(app, values, topic_ids(app, "pipelines"))
    problems = import_outcome(app, values, ["pipelines"])

    assert isinstance(expected, ValidationFailed)
    assert isinstance(problems, list)
    [problem] = problems
    label, _, message = problem.partition(": ")
    assert label == RULE_LABELS[expected.field]
    if expected.field not in REWORDED:
        assert message == expected.message


def test_a_row_without_topics_fails_as_sign_up_does(app):
    expected = sign_up_outcome(app, VALID, [])
    problems = import_outcome(app, VALID, [])

    assert problems == [f"Topics: {expected.message}"]


def test_a_valid_row_gives_the_values_sign_up_stores(app):
    topics = ["response-exercises", "pipelines"]

    expected = sign_up_outcome(app, VALID, topic_ids(app, *topics))
    checked = import_outcome(app, VALID, topics)

    assert not isinstance(checked, list), checked
    assert {key: getattr(checked, key) for key in expected} == expected


def test_the_person_takes_the_organisations_country_when_they_give_none(app):
    values = VALID | {"country": ""}

    expected = sign_up_outcome(app, values, topic_ids(app, "pipelines"))
    checked = import_outcome(app, values, ["pipelines"])

    assert checked.country == expected["country"] == "DE"
