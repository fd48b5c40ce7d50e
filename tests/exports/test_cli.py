"""`flask contacts export`."""

import csv
import io
import json

from openpyxl import load_workbook

from tests.conftest import audit_entries


def test_export_writes_csv_to_standard_output_and_audits_it(app, runner, people):
    result = runner.invoke(args=["contacts", "export", "--country", "de", "--language", "en"])

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["Email"] for r in rows] == ["zoe@example.org"]
    assert "Exported 1 contact(s) as CSV (.csv)." in result.stderr
    [entry] = audit_entries(app, "contacts.exported")
    assert entry.actor == "system"
    assert entry.changes["via"] == "command line"
    assert entry.changes["filter"] == "country Germany; language English"


def test_export_to_a_file_in_each_format(app, runner, people, tmp_path):
    for format_key in ("xlsx", "jsonl", "vcf", "excel-csv"):
        output = tmp_path / f"list.{format_key}"
        result = runner.invoke(
            args=["contacts", "export", "--format", format_key, "--output", str(output)]
        )
        assert result.exit_code == 0, result.output
        assert output.stat().st_size > 0
    assert load_workbook(tmp_path / "list.xlsx").active.max_row == 4
    lines = (tmp_path / "list.jsonl").read_text().splitlines()
    assert {json.loads(line)["email"] for line in lines} == {
        "zoe@example.org",
        "olga@example.ru",
        "jean@example.fr",
    }
    assert not list(tmp_path.glob(".export-*"))  # no temporary file left behind


def test_export_filters_by_topic_type_status_and_words(app, runner, people):
    result = runner.invoke(
        args=[
            "contacts", "export", "--topic", "pipelines", "--stakeholder-type",
            "national_authority", "--status", "unsubscribed", "--query", "dupont",
            "--columns", "email,status",
        ]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Email,Status", "jean@example.fr,unsubscribed"]


def test_export_refuses_unknown_filters_instead_of_exporting_everyone(app, runner, people):
    unknown_topic = runner.invoke(args=["contacts", "export", "--topic", "knitting"])
    unknown_country = runner.invoke(args=["contacts", "export", "--country", "XX"])
    unknown_column = runner.invoke(args=["contacts", "export", "--columns", "email,password"])

    assert unknown_topic.exit_code == 2
    assert "there is no topic 'knitting'" in unknown_topic.output
    assert unknown_country.exit_code == 2
    assert "'XX' is not an ISO 3166-1 alpha-2 country code" in unknown_country.output
    assert unknown_column.exit_code == 2
    assert "Unknown column 'password'" in unknown_column.output
    assert audit_entries(app, "contacts.exported") == []
