"""A value sign-up refuses, an import refuses too, for the same field and in the same words:
the rules live once, in contacts.services."""

import pytest

from jeg_contacts.contacts import services as contacts_services
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.imports.rows import RULE_LABELS
from jeg_contacts.imports.services import Outcome
from jeg_contacts.signup.services import SignupData, register
from tests.conftest import topic_ids
from tests.imports.conftest import csv_bytes, run_import, write

PERSON = {
    "email": "ana@example.org",
    "given_name": "Ana",
    "family_name": "Silva",
    "organisation_name": "Umweltbundesamt",
    "stakeholder_type": "national_authority",
    "organisation_country": "DE",
    "organisation_website": "",
    "job_title": "",
    "department": "",
    "phone": "",
}

# The file's header, each column named as people name it, for PERSON's keys in order.
HEADER = [
    "Email",
    "Given name",
    "Family name",
    "Organisation",
    "Type of organisation",
    "Organisation country",
    "Organisation website",
    "Job title",
    "Department",
    "Phone",
]


def refusal_by_sign_up(app, values: dict) -> ValidationFailed:
    with app.test_request_context():
        try:
            register(
                SignupData(
                    **values, language="en", topic_ids=topic_ids(app, "pipelines"), consent=True
                )
            )
        except ValidationFailed as error:
            return error
        finally:
            db.session.rollback()
    raise AssertionError(f"sign-up accepted {values}")


def refusal_by_import(app, tmp_path, values: dict) -> str:
    cells = [values[key] for key in PERSON]
    # The file names the type as people read it; the row is otherwise the sign-up's values.
    cells[HEADER.index("Type of organisation")] = "National authority"
    rows = [[*cells, "pipelines"]]
    path = write(tmp_path, "list.csv", csv_bytes(rows, header=[*HEADER, "Topics"]))
    summary = run_import(app, path, write=False)
    [rejected] = summary.examples[Outcome.REJECT]
    return rejected.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("given_name", "Ana\x07"),
        ("family_name", "Sil\u2028va"),
        ("job_title", "x" * 201),
        ("department", "Unit\x07"),
        ("organisation_website", "https://" + "x" * 300),
        ("organisation_website", "www.uba.de"),
        ("organisation_name", "<b>Bold</b>"),
        ("phone", "call me"),
    ],
)
def test_an_import_refuses_what_sign_up_refuses_in_the_same_words(app, tmp_path, field, value):
    values = PERSON | {field: value}

    refused = refusal_by_sign_up(app, values)
    detail = refusal_by_import(app, tmp_path, values)

    assert refused.field == field
    assert detail == f"{RULE_LABELS[field]}: {refused.message}"


def test_an_unknown_country_is_refused_by_both_in_the_files_words(app, tmp_path):
    values = PERSON | {"organisation_country": "ZZ"}

    refused = refusal_by_sign_up(app, values)
    detail = refusal_by_import(app, tmp_path, values)

    assert refused.field == "organisation_country"
    assert detail == "Organisation country: “ZZ” is not a country we know."


def test_a_rule_changed_in_contacts_changes_sign_up_and_imports_alike(app, tmp_path, monkeypatch):
    def no_extensions(value):
        if "ext" in (value or ""):
            raise ValidationFailed("phone", "No extensions, please.")
        return value or ""

    monkeypatch.setattr(contacts_services, "check_phone", no_extensions)
    values = PERSON | {"phone": "+49 340 ext 7"}

    refused = refusal_by_sign_up(app, values)
    detail = refusal_by_import(app, tmp_path, values)

    assert (refused.field, refused.message) == ("phone", "No extensions, please.")
    assert detail == "Phone: No extensions, please."
