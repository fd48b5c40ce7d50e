"""The vCard 4.0 writer: RFC 6350 escaping and folding, checked with a real parser."""

from datetime import UTC, datetime

import vobject

from jeg_contacts.exports import vcard


def test_text_escapes_backslash_comma_semicolon_and_line_breaks():
    assert vcard.escape_text("a\\b,c;d\ne\r\nf") == "a\\\\b\\,c\\;d\\ne\\nf"


def test_long_lines_fold_at_75_octets_without_splitting_a_character():
    line = "NOTE:" + "Ж" * 100  # two octets each

    folded = vcard.fold(line)

    physical = folded.split("\r\n")
    assert physical[-1] == ""
    assert all(len(part.encode()) <= 75 for part in physical)
    assert all(part.startswith(" ") for part in physical[1:-1])
    assert "".join(part.removeprefix(" ") for part in physical) == line


def test_short_lines_are_left_alone():
    assert vcard.fold("FN:Ana Silva") == "FN:Ana Silva\r\n"


def test_awkward_values_survive_a_round_trip_through_a_parser():
    text = vcard.card(
        uid="urn:uuid:0d1f6d8e-0000-4000-8000-000000000001",
        given_name="Jean; Paul",
        family_name="Dupont, fils \\ Sr",
        email="jean@example.fr",
        salutation="Dr",
        job_title="Head of unit, “Risk; assessment”\nsecond line",
        phone="+33 1 23 45 67 89",
        organisation="Ministère de la Transition écologique et de la Cohésion des territoires",
        website="https://www.ecologie.gouv.fr",
        country_name="France",
        language="fr",
        categories=["Pipeline safety", "Checklists, including planning"],
        revised=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )

    card = vobject.readOne(text)

    assert card.n.value.given == "Jean; Paul"
    assert card.n.value.family == "Dupont, fils \\ Sr"
    assert card.n.value.prefix == "Dr"
    assert card.fn.value == "Jean; Paul Dupont, fils \\ Sr"
    assert card.title.value == "Head of unit, “Risk; assessment”\nsecond line"
    assert card.org.value == [
        "Ministère de la Transition écologique et de la Cohésion des territoires"
    ]
    assert card.tel.value == "+33 1 23 45 67 89"
    assert card.categories.value == ["Pipeline safety", "Checklists, including planning"]
    assert card.rev.value == "20260102T030405Z"
    assert card.lang.value == "fr"


def test_a_card_without_a_name_is_named_after_its_address():
    card = vobject.readOne(
        vcard.card(uid="urn:uuid:x", given_name="", family_name="", email="a@example.org")
    )

    assert card.fn.value == "a@example.org"
