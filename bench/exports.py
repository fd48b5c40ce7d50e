"""Export times at scale: `flask contacts export` and the back-office download, per format.

    .venv/bin/python bench/exports.py --contacts 100000
    .venv/bin/python bench/exports.py --contacts 100000 --formats csv xlsx

Builds a scratch SQLite database with `flask demo-data`, then for each format (1) runs the
command line export into a file, as its own process, recording wall time and peak RSS, and
(2) downloads the same export through the back office (a logged-in viewer, Flask test
client, streamed body read to the end). Every default column is exported. Prints a Markdown
table; the issue asks for 100,000 contacts as CSV in under 5 s and as XLSX in under 30 s.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, demo_database, flask, scratch_environment, timed_command

sys.path.insert(0, str(ROOT))
FORMATS = ["csv", "excel-csv", "xlsx", "jsonl", "vcf"]
PASSWORD = "bench password, long enough"


def prepare(scratch: Path, contacts: int) -> dict[str, str]:
    environment = scratch_environment(scratch)
    demo_database(environment, contacts)
    flask(environment, "users", "create", "viewer@bench.example", "--role", "viewer",
          "--password-stdin", stdin=PASSWORD)  # fmt: skip
    return environment


def web_download_seconds(environment: dict[str, str], formats: list[str]) -> dict[str, float]:
    """Seconds to download each format through the back office, body read to its end."""
    os.environ.update(environment)
    import re

    from jeg_contacts import create_app
    from jeg_contacts.extensions import db

    app = create_app()
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    client.post(
        "/admin/login",
        data={"csrf_token": token, "email": "viewer@bench.example", "password": PASSWORD},
    )
    seconds = {}
    for format_key in formats:
        started = time.perf_counter()
        response = client.get(f"/admin/exports/download?format={format_key}")
        size = sum(len(chunk) for chunk in response.response)
        response.close()
        if response.status_code != 200 or not size:
            raise RuntimeError(f"download of {format_key} failed: {response.status}")
        seconds[format_key] = time.perf_counter() - started
    with app.app_context():
        db.engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=FORMATS)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"Generating {options.contacts:,} demo contacts…", file=sys.stderr)
        environment = prepare(folder, options.contacts)
        rows = []
        for format_key in options.formats:
            output = folder / f"export.{format_key}"
            seconds, peak = timed_command(
                environment, "contacts", "export", "--format", format_key, "--output", str(output)
            )
            rows.append((format_key, output.stat().st_size, seconds, peak))
        web = web_download_seconds(environment, options.formats)
    print(f"{options.contacts:,} contacts, every default column, SQLite:\n")
    print("| format | file size | `flask contacts export` | its peak RSS | back-office download |")
    print("|---|---|---|---|---|")
    for format_key, size, seconds, peak in rows:
        print(
            f"| {format_key} | {size / 1024 / 1024:.1f} MB | {seconds:.1f} s | {peak:.0f} MB "
            f"| {web[format_key]:.1f} s |"
        )


if __name__ == "__main__":
    main()
