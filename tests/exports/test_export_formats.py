"""Every export format, opened by the reader people and programs would use."""

import csv
import io
import json
from datetime import datetime

import pytest
import vobject
from openpyxl import load_workbook
from werkzeug.datastructures import MultiDict

from jeg_contacts.audiences.services import ContactFilter
from jeg_contacts.contacts.models import Contact
from jeg_contacts.exports import services, writers
from jeg_contacts.extensions import db
from tests.conftest import topic_ids
from tests.directory.conftest import make_contact


def export_bytes(app, format_key: str, args: dict | None = None, **options) -> bytes:
    with app.test_request_context():
        export = services.parse_export(
            ContactFilter.from_args(MultiDict(args or {})), format_key=format_key, **options
        )
        out = io.BytesIO()
        writers.write_export(export, out)
        return out.getvalue()


def csv_rows(content: bytes, encoding: str = "utf-8", delimiter: str = ",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode(encoding)), delimiter=delimiter))


def test_csv_is_read_by_the_csv_module_with_every_default_column(app, people):
    rows = csv_rows(export_bytes(app, "csv"))

    # Sorted by name, as in the directory: Latin script before Cyrillic.
    assert [row["Email"] for row in rows] == [
        "jean@example.fr",
        "zoe@example.org",
        "olga@example.ru",
    ]
    zoe = rows[1]
    assert zoe["Given name"] == "Zoë"
    assert zoe["Family name"] == "Müller"
    assert zoe["Organisation"] == "Umweltbundesamt"
    assert zoe["Type of organisation"] == "National authority"
    assert zoe["Organisation country"] == "DE"
    assert zoe["Topics"] == "pipelines; response-exercises"
    assert zoe["Status"] == "active"
    assert datetime.fromisoformat(zoe["Signed up (UTC)"])
    assert rows[0]["Family name"] == "Dupont, fils"
    assert rows[2]["Organisation"] == "МЧС России"


def test_erased_contacts_never_appear_even_when_asked_for(app, people):
    everything = export_bytes(app, "csv")
    asked_for = export_bytes(app, "csv", {"status": "erased"})

    assert b"gone@example.org" not in everything
    assert len(csv_rows(asked_for)) == 0
    with app.test_request_context():
        assert services.count_matches(ContactFilter.from_args(MultiDict({"status": "erased"}))) == 0


def test_excel_csv_starts_with_a_byte_order_mark_and_may_use_semicolons(app, people):
    content = export_bytes(app, "excel-csv", delimiter="semicolon")

    assert content.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(content, "utf-8-sig", delimiter=";")
    assert {row["Email"] for row in rows} == {
        "jean@example.fr",
        "olga@example.ru",
        "zoe@example.org",
    }


def test_filters_are_those_of_the_directory(app, people):
    [exercises] = topic_ids(app, "response-exercises")

    by_topic = csv_rows(export_bytes(app, "csv", {"topic": str(exercises)}))
    by_country = csv_rows(export_bytes(app, "csv", {"country": "RU"}))
    by_status = csv_rows(export_bytes(app, "csv", {"status": "unsubscribed"}))
    by_words = csv_rows(export_bytes(app, "csv", {"q": "ministere"}))

    assert [row["Email"] for row in by_topic] == ["zoe@example.org"]
    assert [row["Email"] for row in by_country] == ["olga@example.ru"]
    assert [row["Email"] for row in by_status] == ["jean@example.fr"]
    assert [row["Email"] for row in by_words] == ["jean@example.fr"]


def test_chosen_columns_come_in_the_order_of_the_list(app, people):
    content = export_bytes(
        app, "csv", columns=["topic_names", "email", "id", "country_name", "confirmed"]
    )

    rows = csv_rows(content)
    assert list(rows[0]) == [
        "Email",
        "Country name",
        "Topic names",
        "Confirmed (UTC)",
        "Contact ID",
    ]
    zoe = next(row for row in rows if row["Email"] == "zoe@example.org")
    assert zoe["Country name"] == "Germany"
    assert zoe["Topic names"] == "Pipeline safety; International response exercises"
    assert zoe["Contact ID"] == str(people["zoe"])


def test_xlsx_is_read_by_openpyxl_with_a_frozen_bold_header_and_widths(app, people):
    workbook = load_workbook(io.BytesIO(export_bytes(app, "xlsx")))
    sheet = workbook.active

    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["Email", "Salutation", "Given name", "Family name"]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:O{sheet.max_row}"
    assert sheet.column_dimensions["A"].width == 32
    rows = [
        dict(zip(header, (cell.value for cell in line), strict=True))
        for line in sheet.iter_rows(min_row=2)
    ]
    assert [row["Email"] for row in rows] == [
        "jean@example.fr",
        "zoe@example.org",
        "olga@example.ru",
    ]
    assert rows[2]["Given name"] == "Ольга"
    assert isinstance(rows[1]["Signed up (UTC)"], datetime)
    assert rows[0]["Job title"] is None


def test_jsonl_has_one_object_per_line_with_codes_and_lists(app, people):
    lines = export_bytes(app, "jsonl").decode().splitlines()

    items = [json.loads(line) for line in lines]
    assert len(items) == 3
    zoe = next(item for item in items if item["email"] == "zoe@example.org")
    assert zoe["stakeholder_type"] == "national_authority"
    assert zoe["topics"] == ["pipelines", "response-exercises"]
    assert datetime.fromisoformat(zoe["signed_up"]).tzinfo is not None


def test_vcards_are_read_by_a_vcard_parser(app, people):
    content = export_bytes(app, "vcf").decode()

    assert all(line.endswith("\r") or not line for line in content.split("\n"))
    cards = {card.email.value: card for card in vobject.readComponents(content)}
    assert set(cards) == {"jean@example.fr", "olga@example.ru", "zoe@example.org"}
    olga = cards["olga@example.ru"]
    assert olga.version.value == "4.0"
    assert olga.fn.value == "Ольга Иванова"
    assert olga.n.value.family == "Иванова"
    assert olga.org.value == ["МЧС России"]
    jean = cards["jean@example.fr"]
    assert jean.n.value.family == "Dupont, fils"  # the comma survives escaping
    assert jean.fn.value == "Jean Dupont, fils"
    zoe = cards["zoe@example.org"]
    categories = zoe.categories.value
    assert categories == ["Pipeline safety", "International response exercises"]
    assert zoe.adr.value.country == "Germany"


FORMULAS = ['=HYPERLINK("http://evil.example")', "+1+2", "-3+4", "@SUM(A1)", "\tcmd", "\rcmd"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_formula_cells_are_neutralised_in_csv_and_xlsx(app, formula):
    contact_id = make_contact(app, email="formula@example.org")
    with app.app_context():
        # Stored directly: the sign-up rules would refuse control characters in a name.
        db.session.get(Contact, contact_id).job_title = formula
        db.session.commit()

    [csv_row] = csv_rows(export_bytes(app, "csv"))
    sheet = load_workbook(io.BytesIO(export_bytes(app, "xlsx"))).active
    header = [cell.value for cell in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("Job title") + 1)

    assert csv_row["Job title"] == "'" + formula
    assert cell.value == "'" + formula
    assert cell.data_type == "s"


@pytest.mark.parametrize(
    "phone", ["+41 22 917 12 34", "+7 (495) 123-45-67", "+33 1.23.45.67.89", "+1 (555) 0100"]
)
def test_phone_numbers_go_out_as_typed(app, phone):
    make_contact(app, email="phone@example.org")
    with app.app_context():
        db.session.scalar(db.select(Contact)).phone = phone
        db.session.commit()

    [row] = csv_rows(export_bytes(app, "csv"))
    sheet = load_workbook(io.BytesIO(export_bytes(app, "xlsx"))).active
    header = [cell.value for cell in sheet[1]]

    assert row["Phone"] == phone
    assert sheet.cell(row=2, column=header.index("Phone") + 1).value == phone


@pytest.mark.parametrize(
    "value",
    # Formulas; then numbers a spreadsheet would not keep as typed (no separator, or digits
    # in thousands, which French LibreOffice reads as a number).
    ["+41 22 917 12 34+cmd", "+1+2", "+41 (22) A1", "+1 |calc", "+41229171234", "+33 123"],
)
def test_a_plus_value_that_is_not_a_phone_number_is_neutralised(app, value):
    make_contact(app, email="phone@example.org")
    with app.app_context():
        db.session.scalar(db.select(Contact)).phone = value  # stored directly, past the rules
        db.session.commit()

    [row] = csv_rows(export_bytes(app, "csv"))

    assert row["Phone"] == "'" + value


def test_an_empty_selection_gives_just_the_header(app, people):
    rows = list(csv.reader(io.StringIO(export_bytes(app, "csv", {"country": "KZ"}).decode())))

    assert rows == [[column.header for column in services.COLUMNS.values() if column.default]]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"format_key": "pdf"}, "format"),
        ({"format_key": "csv", "columns": ["email", "password"]}, "columns"),
        ({"format_key": "csv", "delimiter": "colon"}, "delimiter"),
    ],
)
def test_unknown_choices_are_refused_with_the_field_named(app, options, field):
    from jeg_contacts.errors import ValidationFailed

    with app.test_request_context(), pytest.raises(ValidationFailed) as error:
        services.parse_export(ContactFilter(), **options)
    assert error.value.field == field


@pytest.mark.parametrize("sort", ["organisation", "-organisation", "-signed_up", "country"])
def test_every_directory_order_can_be_exported(app, people, sort):
    rows = csv_rows(export_bytes(app, "csv", sort=sort))

    assert len(rows) == 3
    if sort == "organisation":
        assert [row["Organisation"] for row in rows] == [
            "Ministère de la Transition écologique",
            "Umweltbundesamt",
            "МЧС России",
        ]
