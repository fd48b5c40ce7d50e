"""`flask worker`: the one background process. It runs the delivery engine
(`mailing.worker.DeliveryWorker`) and, in a thread beside it, the job runner
(`jobs.runner.JobRunner`: imports, scheduled sends, housekeeping), so the process starts and
stops as one."""

import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from jeg_contacts.jobs.runner import JobRunner
from jeg_contacts.mailing.worker import DeliveryWorker


@click.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="SMTP connections used in parallel.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="At most this many messages per second (default: no limit).",
)
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress lines.")
@with_appcontext
def worker_command(
    concurrency: int, rate: float | None, until_idle: bool, batch_size: int, quiet: bool
) -> None:
    """Deliver queued announcement messages and run background jobs."""
    app = current_app._get_current_object()
    json_logs = app.config["LOG_FORMAT"] == "json"
    # With LOG_FORMAT=json the worker reports through log records (one JSON object per
    # line, like everything else it logs), not as lines of text.
    say = logging.getLogger("jeg_contacts.worker").info if json_logs else None
    deliveries = DeliveryWorker(
        app,
        concurrency=concurrency,
        rate=rate,
        batch_size=batch_size,
        until_idle=until_idle,
        progress=None if quiet else say or (lambda line: click.echo(line, err=True)),
    )
    jobs, stop_jobs = JobRunner(app), threading.Event()
    # A polite stop on SIGTERM/SIGINT: in-flight messages finish, claimed rows go back.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (deliveries.stop(), stop_jobs.set()))
    if until_idle:
        # The jobs first: a job may queue deliveries (a scheduled send).
        jobs.run_until_idle()
        outcome = deliveries.run()
    else:
        thread = threading.Thread(target=jobs.run, args=(stop_jobs,), name="jobs")
        thread.start()
        try:
            outcome = deliveries.run()
        finally:
            stop_jobs.set()
            thread.join()
    (say or click.echo)(
        f"Worker finished: sent {outcome.sent}, failed {outcome.failed}, "
        f"retried {outcome.retried}, skipped {outcome.skipped}."
    )
