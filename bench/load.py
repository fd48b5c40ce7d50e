"""Load: concurrent visitors browsing and signing up through gunicorn on PostgreSQL, while the
worker sends an announcement.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/load.py --database-url postgresql+psycopg://jeg:jeg@127.0.0.1:5432/jeg_test

In a schema of its own in that database (dropped at the end) it builds a directory of
`--contacts` demo contacts, starts gunicorn with deploy/gunicorn.conf.py (production settings,
TRUSTED_PROXY_COUNT=1 as behind nginx) and `flask worker --rate` sending an announcement to
every active contact through a local SMTP sink (aiosmtpd), warms every page up, then runs
locust headless (bench/load_users.py) with `--users` visitors for `--seconds`. Sign-up
confirmations go through the same sink. Prints a Markdown table per page and the totals;
the 5xx count is read from gunicorn's own access log, not from the client.
"""

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from delivery import start_sink
from harness import FLASK, ROOT, flask

LOCUST = str(Path(sys.executable).with_name("locust"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def schema_environment(database_url: str, schema: str, folder: Path, sink: int) -> dict:
    """The app's environment: production settings, `schema` of the database, mail to the sink."""
    options = quote(f"-c search_path={schema}")
    return {
        **os.environ,
        "JEG_ENV": "production",
        "SECRET_KEY": "load-benchmark-" + "k" * 40,
        "DATABASE_URL": f"{database_url}?options={options}",
        "INSTANCE_PATH": str(folder),
        "BASE_URL": "https://contacts.example.org",
        "MAIL_FROM": "JEG secretariat <jeg@example.org>",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink),
        "TRUSTED_PROXY_COUNT": "1",
        "GUNICORN_BIND": "127.0.0.1:8642",
        "GUNICORN_ACCESS_LOG": str(folder / "access.log"),
    }


def prepare(environment: dict, contacts: int) -> int:
    """Schema, topics, demo contacts and a draft to all of them; the draft's id."""
    flask(environment, "db", "upgrade")
    flask(environment, "seed")
    flask(environment, "demo-data", "--contacts", str(contacts))
    body = Path(environment["INSTANCE_PATH"]) / "body.md"
    body.write_text("Dear {{ given_name }},\n\nThe load benchmark's announcement.\n")
    return int(
        flask(environment, "announcements", "create", "--subject", "Load", "--body", str(body))
    )


def wait_until_serving(address: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{address}/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not answer")


def warm_up(address: str) -> None:
    """Every page a few times per gunicorn worker, as on a server that has been up a while:
    each worker compiles its templates and loads the catalogues on first use."""
    pages = ["/", "/?lang=fr", "/?lang=ru", "/privacy", "/signup", "/announcements"]
    pages.append("/announcements/feed.atom")
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(lambda path: urllib.request.urlopen(address + path).read(), pages * 20):
            pass


def sent(environment: dict, announcement: int) -> int:
    status = flask(environment, "announcements", "status", str(announcement), "--json")
    return int(re.search(r'"sent": (\d+)', status)[1])


def run_locust(address: str, users: int, seconds: int, folder: Path) -> list[dict]:
    subprocess.run(
        [
            LOCUST, "-f", str(ROOT / "bench/load_users.py"), "--headless", "--host", address,
            "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
            "--csv", str(folder / "locust"), "--only-summary", "--loglevel", "WARNING",
        ],
        check=False,  # locust exits 1 when any request failed; the table says which
        cwd=ROOT,
    )  # fmt: skip
    with open(folder / "locust_stats.csv") as stats:
        return list(csv.DictReader(stats))


def server_errors(access_log: Path) -> int:
    statuses = re.findall(r'" (\d{3}) ', access_log.read_text())
    return sum(1 for status in statuses if status.startswith("5"))


def report(rows: list[dict], errors: int, messages: int, seconds: int) -> None:
    print("| page | requests | failures | median | p95 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        name = "**all**" if row["Name"] == "Aggregated" else f"`{row['Type']} {row['Name']}`"
        slowest = float(row["Max Response Time"])
        print(
            f"| {name} | {row['Request Count']} | {row['Failure Count']} | "
            f"{row['50%']} ms | {row['95%']} ms | {row['99%']} ms | {slowest:.0f} ms |"
        )
    total = next(row for row in rows if row["Name"] == "Aggregated")
    print(
        f"\n{float(total['Requests/s']):.1f} requests/s; 5xx answers in gunicorn's log: {errors}; "
        f"the worker sent {messages} messages meanwhile ({messages / seconds:.0f}/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL (psycopg) URL")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100, help="the worker's messages/s")
    arguments = parser.parse_args()

    schema = f"load_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(arguments.database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sink, sink_port = start_sink()
    processes: list[subprocess.Popen] = [sink]
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            environment = schema_environment(arguments.database_url, schema, folder, sink_port)
            announcement = prepare(environment, arguments.contacts)
            address = "http://" + environment["GUNICORN_BIND"]
            processes.append(
                subprocess.Popen(
                    [GUNICORN, "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                    cwd=ROOT,
                    env=environment,
                )
            )
            wait_until_serving(address)
            warm_up(address)
            worker = [FLASK, "--app", "wsgi", "worker", "--quiet", "--rate", str(arguments.rate)]
            processes.append(subprocess.Popen(worker, cwd=ROOT, env=environment))
            flask(environment, "announcements", "send", str(announcement))
            time.sleep(2)  # the worker is sending before the first visitor comes
            before = sent(environment, announcement)
            rows = run_locust(address, arguments.users, arguments.seconds, folder)
            messages = sent(environment, announcement) - before
            report(rows, server_errors(folder / "access.log"), messages, arguments.seconds)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(60)
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


if __name__ == "__main__":
    main()
