"""Directory page render times at scale (full Flask request: query, template, response).

    .venv/bin/python bench/directory.py --contacts 100000 --repeat 15

Builds a scratch SQLite database with `flask demo-data`, logs in as a viewer and requests a
set of filtered and sorted directory pages, printing median and 95th percentile per page.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, demo_database, scratch_environment

sys.path.insert(0, str(ROOT))


def scenarios(topic_id: int) -> list[tuple[str, str]]:
    return [
        ("first page, sorted by name", "/admin/contacts"),
        ("sorted by sign-up date, newest first", "/admin/contacts?sort=-signed_up"),
        ("page 1,000 by name", "/admin/contacts?page=1000"),
        ("search 'muller'", "/admin/contacts?q=muller"),
        ("search 'danube', sorted by email", "/admin/contacts?q=danube&sort=email"),
        ("country DE + status active, by name", "/admin/contacts?country=DE&status=active"),
        ("type national authority, by organisation",
         "/admin/contacts?type=national_authority&sort=organisation"),
        ("topic + language ru, newest first",
         f"/admin/contacts?topic={topic_id}&language=ru&sort=-signed_up"),
        ("signed up in 2025, by country",
         "/admin/contacts?since=2025-01-01&until=2025-12-31&sort=country"),
        ("status pending, by status", "/admin/contacts?status=pending&sort=status"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        environment = scratch_environment(Path(scratch))
        demo_database(environment, options.contacts)
        os.environ.update(environment)
        from jeg_contacts import create_app
        from jeg_contacts.auth.models import Role
        from jeg_contacts.auth.services import create_user
        from jeg_contacts.contacts.models import Topic
        from jeg_contacts.extensions import db

        app = create_app({"WTF_CSRF_ENABLED": False})
        with app.app_context():
            create_user("bench@example.org", "benchmark password", Role.VIEWER)
            db.session.commit()
            topic_id = db.session.scalar(db.select(Topic.id).where(Topic.slug == "pipelines"))
        client = app.test_client()
        client.post(
            "/admin/login", data={"email": "bench@example.org", "password": "benchmark password"}
        )
        print(f"{options.contacts:,} contacts, {options.repeat} requests per page after 2 warm-ups")
        print("| page | median ms | p95 ms | rows shown |")
        print("|---|---|---|---|")
        medians = []
        for label, url in scenarios(topic_id):
            timings = []
            for run in range(options.repeat + 2):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (url, response.status_code)
                if run >= 2:
                    timings.append(elapsed)
            rows = len(
                set(re.findall(r'href="/admin/contacts/(\d+)"', response.get_data(as_text=True)))
            )
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            median = statistics.median(timings)
            medians.append(median)
            print(f"| {label} | {median:.1f} | {p95:.1f} | {rows} |")
        print(f"\nmedian of the page medians: {statistics.median(medians):.1f} ms")
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
