"""`flask contacts import`: the import pipeline from the command line."""

import csv
import io

from jeg_contacts.contacts.models import ContactStatus
from tests.conftest import audit_entries
from tests.imports.conftest import (
    contacts_by_email,
    count_contacts,
    csv_bytes,
    row,
    write,
)


def test_import_prints_a_line_per_row_and_a_summary(app, runner, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org"), row("bad")]))

    result = runner.invoke(args=["contacts", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert "row      2  create     ana@example.org  New contact, pending" in result.stdout
    assert "row      3  reject     bad  Email: Enter a valid email address" in result.stdout
    assert "Added 1, updated 0, unchanged 0, skipped 0, rejected 1 of 2 rows" in result.stdout
    assert "  Email -> Email" in result.stderr
    assert set(contacts_by_email(app)) == {"ana@example.org"}
    [entry] = audit_entries(app, "contacts.imported")
    assert entry.actor == "the command line"


def test_import_dry_run_writes_nothing(app, runner, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))

    result = runner.invoke(args=["contacts", "import", str(path), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "Would add 1" in result.stdout
    assert "Dry run: nothing was written." in result.stdout
    assert count_contacts(app) == 0


def test_import_maps_columns_and_sets_defaults_from_options(app, runner, tmp_path):
    path = write(
        tmp_path,
        "list.csv",
        csv_bytes(
            [["ana@example.org", "Ana", "Silva", "UBA", "DE", "x"]],
            header=["Adresse", "Given", "Family", "Org", "Land", "Notes"],
        ),
    )

    result = runner.invoke(
        args=[
            "contacts", "import", str(path), "--map", "Adresse=email", "--map", "2=given_name",
            "--map", "family=family_name", "--map", "Org=organisation", "--map",
            "Land=organisation_country", "--map", "Notes=ignore", "--type", "ngo", "--topic",
            "pipelines", "--language", "ru", "--status", "pending",
        ]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    ana = contacts_by_email(app)["ana@example.org"]
    assert (ana.given_name, ana.language, ana.status) == ("Ana", "ru", ContactStatus.PENDING)
    assert ana.organisation.stakeholder_type.value == "ngo"
    assert "Confirmation emails: 1 sent" in result.stdout


def test_import_of_an_unreadable_file_exits_with_a_message(app, runner, tmp_path):
    missing = runner.invoke(args=["contacts", "import", str(tmp_path / "nowhere.csv")])
    garbage = runner.invoke(
        args=["contacts", "import", str(write(tmp_path, "bin.csv", bytes(range(256)) * 10))]
    )

    assert missing.exit_code == 1
    assert "Cannot import" in missing.output and "No such file or directory" in missing.output
    assert garbage.exit_code == 1
    assert "it contains binary data" in garbage.output


def test_import_with_columns_missing_says_which(app, runner, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([["ana@example.org"]], header=["Email"]))

    result = runner.invoke(args=["contacts", "import", str(path)])

    assert result.exit_code == 1
    assert "Choose the column that holds the organisations." in result.output
    assert "Use --map COLUMN=FIELD" in result.output


def test_import_with_a_bad_map_lists_the_columns(app, runner, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))

    wrong_column = runner.invoke(args=["contacts", "import", str(path), "--map", "Mail=email"])
    wrong_field = runner.invoke(args=["contacts", "import", str(path), "--map", "Email=mail"])

    assert wrong_column.exit_code == 2
    assert "the file has no column 'Mail'; its columns are: Email, Given name" in (
        wrong_column.output
    )
    assert wrong_field.exit_code == 2
    assert "'mail' is not a field" in wrong_field.output


def test_import_writes_the_rejected_rows_to_a_report(app, runner, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org"), row("bad")]))
    report = tmp_path / "rejected.csv"

    result = runner.invoke(
        args=["contacts", "import", str(path), "--report", str(report), "--quiet"]
    )

    assert result.exit_code == 0, result.output
    assert "create" not in result.stdout  # --quiet prints rejected rows only
    rows = list(csv.reader(io.StringIO(report.read_text("utf-8-sig"))))
    assert rows[0][:3] == ["Row", "Problems", "Email"]
    assert rows[1][:3] == ["3", rows[1][1], "bad"]


def test_import_records_the_staff_member_named(app, runner, tmp_path):
    from tests.conftest import audit_entries, create_staff

    create_staff(app, "clerk@unece.test", "editor")
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))

    result = runner.invoke(args=["contacts", "import", str(path), "--by", "clerk@unece.test"])

    assert result.exit_code == 0, result.output
    ana = contacts_by_email(app)["ana@example.org"]
    assert ana.consent_events[0].source == "imported by clerk@unece.test from list.csv"
    [entry] = audit_entries(app, "contacts.imported")
    assert entry.actor == "clerk@unece.test"
