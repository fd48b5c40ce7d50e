"""What /metrics reports, read from the database on each scrape and written in Prometheus'
text format (version 0.0.4).

Every figure comes from the database rather than from counters in memory, so every web
process answers alike whatever it served itself, and a restart resets nothing. The format is
a few lines of text; prometheus_client would add a dependency and a registry of in-process
counters we do not use."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.jobs.models import Job, JobStatus
from jeg_contacts.mailing.models import Delivery, DeliveryStatus, Worker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metric:
    """One metric family: its name, kind, help text and samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            yield f"{self.name}{_labels(labels)} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = (f'{name}="{_escape(value)}"' for name, value in sorted(labels.items()))
    return "{" + ",".join(pairs) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _deliveries_by_status() -> Metric:
    counts = dict(
        db.session.execute(
            sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)
        ).all()
    )
    return Metric(
        "jeg_deliveries",
        "gauge",
        "Announcement deliveries by state (queued and sending are the queue's depth).",
        [({"status": status.value}, counts.get(status, 0)) for status in DeliveryStatus],
    )


def _sent_per_minute() -> Metric:
    now = utcnow()
    samples = []
    for window, minutes in (("1m", 1), ("5m", 5)):
        sent = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(
                Delivery.status == DeliveryStatus.SENT,
                Delivery.sent_at >= now - timedelta(minutes=minutes),
            )
        )
        samples.append(({"window": window}, (sent or 0) / minutes))
    return Metric(
        "jeg_deliveries_sent_per_minute",
        "gauge",
        "Deliveries sent per minute, averaged over the last minute and the last 5 minutes.",
        samples,
    )


def _failures() -> Metric:
    failed = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.status == DeliveryStatus.FAILED)
    )
    return Metric(
        "jeg_deliveries_failed",
        "gauge",
        "Deliveries refused by the relay or out of attempts (a retry of an announcement's "
        "failed deliveries lowers it).",
        [({}, failed or 0)],
    )


def _bounces() -> Metric:
    bounced = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Contact)
        .where(Contact.status == ContactStatus.BOUNCED)
    )
    return Metric(
        "jeg_contacts_bounced",
        "gauge",
        "Contacts whose address is marked as bouncing.",
        [({}, bounced or 0)],
    )


def _jobs() -> Iterable[Metric]:
    now = utcnow()
    due = db.session.execute(
        sa.select(Job.kind, sa.func.count())
        .where(Job.status == JobStatus.QUEUED, Job.run_after <= now)
        .group_by(Job.kind)
    ).all()
    running = db.session.execute(
        sa.select(Job.kind, sa.func.count())
        .where(Job.status == JobStatus.RUNNING)
        .group_by(Job.kind)
    ).all()
    yield Metric(
        "jeg_jobs_due",
        "gauge",
        "Background jobs due and waiting for the worker, by kind.",
        [({"kind": kind}, count) for kind, count in sorted(due)],
    )
    yield Metric(
        "jeg_jobs_running",
        "gauge",
        "Background jobs being run, by kind.",
        [({"kind": kind}, count) for kind, count in sorted(running)],
    )


def _workers() -> Iterable[Metric]:
    now = utcnow()
    workers = db.session.scalars(sa.select(Worker).order_by(Worker.id)).all()
    yield Metric(
        "jeg_workers",
        "gauge",
        "Workers registered (a worker that stopped politely is gone from the count).",
        [({}, len(workers))],
    )
    yield Metric(
        "jeg_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since each worker last said it was alive.",
        [
            (
                {"host": worker.hostname, "pid": str(worker.pid)},
                round((now - worker.heartbeat_at).total_seconds(), 3),
            )
            for worker in workers
        ],
    )


def collect() -> list[Metric]:
    """Every metric, read now from the database."""
    return [
        _deliveries_by_status(),
        _sent_per_minute(),
        _failures(),
        _bounces(),
        *_jobs(),
        *_workers(),
    ]


def render(metrics: Iterable[Metric]) -> str:
    """The metrics in Prometheus' text format."""
    return "".join(f"{line}\n" for metric in metrics for line in metric.render())
