"""Job kinds, registered by the feature that owns them (the jobs package imports none).

A handler receives a `JobContext` and returns the job's result (JSON-able, or None). It runs
in an app context; what it writes through `db.session` is committed together with the job's
completion, so a job that dies half-way leaves nothing behind and can simply run again."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jeg_contacts.jobs.runner import JobContext

Handler = Callable[["JobContext"], dict[str, Any] | None]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    # None: JOB_MAX_ATTEMPTS. A retry waits retry_base, then twice that, and so on.
    max_attempts: int | None = None
    retry_base: timedelta | None = None
    # A recurring (housekeeping) kind: kept enqueued, and run again this long after each run.
    every: timedelta | None = None


_kinds: dict[str, JobKind] = {}


def register(
    name: str,
    handler: Handler,
    *,
    max_attempts: int | None = None,
    retry_base: timedelta | None = None,
    every: timedelta | None = None,
) -> Handler:
    """Make `name` a job kind run by `handler`; registering a name again replaces it."""
    _kinds[name] = JobKind(name, handler, max_attempts, retry_base, every)
    return handler


def job(name: str, **options: Any) -> Callable[[Handler], Handler]:
    """`register` as a decorator: `@job("signup.forget_expired", every=timedelta(hours=1))`."""

    def decorate(handler: Handler) -> Handler:
        return register(name, handler, **options)

    return decorate


def unregister(name: str) -> None:
    _kinds.pop(name, None)


def get(name: str) -> JobKind | None:
    return _kinds.get(name)


def kinds() -> list[JobKind]:
    return list(_kinds.values())


def recurring() -> list[JobKind]:
    return [kind for kind in _kinds.values() if kind.every is not None]
