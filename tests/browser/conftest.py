"""A live server and a page of Debian's Chromium (the `browser` of tests/conftest.py); a
screenshot on every failure."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from jeg_contacts.jobs.runner import JobRunner
from tests.conftest import free_port, make_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class LiveServer:
    def __init__(self, app, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    app = make_app(tmp_path, BASE_URL=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # The background jobs (imports) run beside it, as `flask worker` runs them beside the site.
    stop_jobs = threading.Event()
    jobs = threading.Thread(target=JobRunner(app, poll_seconds=0.1).run, args=(stop_jobs,))
    jobs.start()
    yield LiveServer(app, port)
    stop_jobs.set()
    jobs.join()
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
