"""Logs for a server: with LOG_FORMAT=json, one JSON object per line, and one line per request
(request id, staff id, route, method, status, duration). With the default `text`, logging
stays as Python and Flask set it up.

What a line never holds: the raw path or query string (our paths carry confirmation,
preference and unsubscribe tokens, so a request is named by its URL rule, such as
`/preferences/<token>`), form fields, passwords, message bodies, or a staff member's email
(only their id)."""

import json
import logging
import re
import sys
import time
import types
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

# An incoming X-Request-ID (set by a proxy such as nginx's $request_id) is kept only if it
# looks like an id: short, and letters, digits and a few separators. Anything else could be
# a way to write into our logs, so it is replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
REQUEST_ID_HEADER = "X-Request-ID"
# Attributes every LogRecord has; anything else was passed in `extra=` and goes in the line.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, with the request's id and staff id if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            line["request_id"] = g.request_id
            user = _staff_id()
            if user is not None:
                line["user"] = user
        line.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test may have replaced it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _staff_id() -> int | None:
    """The signed-in staff member's id, if this request has already loaded them (every
    /admin request has; a public page never loads anyone, and needs no query for it)."""
    user = g.get("_login_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.id


def request_id() -> str:
    """This request's id: the proxy's X-Request-ID if it is sane, else a new one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _start_request() -> None:
    g.request_id = request_id()
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or request_id()
    return response


def _log_request(response: Response) -> Response:
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    logging.getLogger("jeg_contacts.requests").info(
        "request",
        extra={
            "method": request.method,
            # The rule, never the path: paths carry tokens.
            "route": request.url_rule.rule if request.url_rule else None,
            "endpoint": request.endpoint,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
    return response


def _log_exception(app: Flask, exc_info: Any) -> None:
    """Flask's own log_exception names the raw path, token included: name the route."""
    route = request.url_rule.rule if request.url_rule else "an unknown page"
    app.logger.error(f"Exception on {route} [{request.method}]", exc_info=exc_info)


def use_json_logs() -> None:
    """Send every logger's records to stderr as JSON lines (for the web app and the worker)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    # The development server's own request lines hold the raw path, tokens included; ours
    # replace them.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    """Give every request an id (X-Request-ID in and out); with LOG_FORMAT=json, log as JSON.

    Call before any other before_request function is registered, so that the id and the
    start time exist even for a request another one cuts short."""
    app.before_request(_start_request)
    app.log_exception = types.MethodType(_log_exception, app)  # type: ignore[method-assign]
    if app.config["LOG_FORMAT"] == "json":
        use_json_logs()
        # Flask's own handler would write the same records again, as text.
        app.logger.removeHandler(default_handler)
        app.after_request(_log_request)
    # Registered last, so it runs first: after_request functions run in reverse order.
    app.after_request(_finish_request)
