"""Delivery engine throughput against a local SMTP sink, compared with raw smtplib.

    .venv/bin/python bench/delivery.py --recipients 100000 --concurrency 1 4

For each concurrency it measures (1) the raw limit: plain `smtplib.sendmail` of pre-built
message bytes of the same size over the same number of connections, no database; and (2) the
`flask worker` process draining a 100,000-recipient announcement from SQLite. The sink is
aiosmtpd's Sink handler in its own process on loopback. Prints a Markdown table.
"""

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import FLASK, ROOT, PeakMemory, demo_database, flask, scratch_environment

sys.path.insert(0, str(ROOT))
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink() -> tuple[subprocess.Popen, int]:
    port = free_port()
    sink = subprocess.Popen(
        [PYTHON, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


def raw_rate(port: int, message: bytes, count: int, connections: int) -> float:
    """Messages per second of plain smtplib over `connections` parallel connections."""
    share = [
        count // connections + (1 if i < count % connections else 0) for i in range(connections)
    ]

    def send(n: int) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for i in range(n):
                smtp.sendmail("jeg@unece.test", [f"person{i}@example.org"], message)

    threads = [threading.Thread(target=send, args=(n,)) for n in share]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


def prepare(instance: Path, recipients: int) -> tuple[dict[str, str], int, int]:
    """A database with `recipients` active contacts and one queued announcement."""
    environment = scratch_environment(
        instance,
        BASE_URL="https://contacts.jeg.example",
        MAIL_FROM="JEG secretariat <jeg@unece.test>",
    )
    demo_database(environment, recipients)
    body = instance / "body.md"
    body.write_text(
        "Dear {{ given_name }},\n\nThe **Joint Expert Group** invites {{ organisation }} to a "
        "workshop on the safety of tailings management facilities in Almaty.\n\n"
        + "Programme details follow. "
        * 40
    )
    announcement_id = int(
        flask(environment, "announcements", "create", "--subject", "Workshop", "--body", str(body))
    )
    # Everyone active: the demo data has a mix of statuses.
    sent = flask(environment, "announcements", "send", str(announcement_id))
    queued = int(sent.split(":")[1].split()[0])
    return environment, announcement_id, queued


def sample_message(environment: dict[str, str], announcement_id: int) -> bytes:
    """One real message of the announcement, as the worker builds it, for the raw baseline."""
    os.environ.update(environment)
    from jeg_contacts import create_app
    from jeg_contacts.extensions import db
    from jeg_contacts.mailing.models import Announcement
    from jeg_contacts.mailing.rendering import MessageFactory, Recipient
    from jeg_contacts.mailing.services import language_version, list_id

    app = create_app()
    with app.app_context():
        version = language_version(db.session.get(Announcement, announcement_id), "en")
        factory = MessageFactory.for_sender(app.config["MAIL_FROM"], list_id())
        recipient = Recipient(
            email="zoe.mueller@example.org",
            given_name="Zoë",
            family_name="Müller",
            organisation="Umweltbundesamt",
            topics="Safety of tailings management facilities, Workshops and seminars",
            preferences_url="https://contacts.jeg.example/preferences/12345." + "x" * 32,
            unsubscribe_url="https://contacts.jeg.example/unsubscribe/12345." + "x" * 32,
        )
        raw = factory.build(version, recipient).raw
        db.engine.dispose()
    return raw


def worker_rate(
    environment: dict[str, str], port: int, concurrency: int, queued: int
) -> tuple[float, float]:
    """(messages per second, peak RSS in MB) of one `flask worker --until-idle` process."""
    started = time.perf_counter()
    worker = subprocess.Popen(
        [FLASK, "--app", "wsgi", "worker", "--until-idle", "--quiet",
         "--concurrency", str(concurrency), "--batch-size", "200"],
        env={**environment, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port)},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    memory = PeakMemory(worker.pid)
    worker.wait()
    peak = memory.stop()
    if worker.returncode:
        raise RuntimeError(f"worker exited with {worker.returncode}")
    return queued / (time.perf_counter() - started), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    options = parser.parse_args()
    sink, port = start_sink()
    try:
        print("| connections | raw smtplib msg/s | worker msg/s | ratio | worker peak RSS |")
        print("|---|---|---|---|---|")
        for concurrency in options.concurrency:
            with tempfile.TemporaryDirectory() as scratch:
                environment, announcement_id, queued = prepare(Path(scratch), options.recipients)
                message = sample_message(environment, announcement_id)
                rate, peak = worker_rate(environment, port, concurrency, queued)
                raw = raw_rate(port, message, min(queued, 20_000), concurrency)
                ratio = rate / raw
                print(f"| {concurrency} | {raw:,.0f} | {rate:,.0f} | {ratio:.2f} | {peak:.0f} MB |")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
