"""SQLite has one writer at a time: a sign-up waits for its turn, and if the wait runs out
(a long import holding the database) it gets a clear "busy" page and nothing is saved."""

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact
from jeg_contacts.extensions import db
from tests.conftest import TEST_DATABASE_URL, make_app, post_signup

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL.startswith("postgresql"), reason="SQLite's single writer only"
)


def _hold_write_lock(app) -> sqlite3.Connection:
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # takes the write lock, as an import's transaction does
    return holder


def _contacts(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Contact))


def test_a_signup_waits_for_a_brief_writer(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    holder = _hold_write_lock(app)
    release = threading.Timer(0.5, holder.rollback)
    release.start()
    started = time.monotonic()
    response = post_signup(client, app)
    release.join()
    assert response.status_code == 302
    assert time.monotonic() - started >= 0.4  # it really waited for the writer
    assert _contacts(app) == 1


def test_a_signup_that_waits_too_long_gets_a_busy_page_and_saves_nothing(tmp_path):
    app = make_app(tmp_path, SQLITE_BUSY_TIMEOUT_SECONDS=0.2)
    client = app.test_client()
    holder = _hold_write_lock(app)
    try:
        response = post_signup(client, app)
    finally:
        holder.rollback()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    page = response.get_data(as_text=True)
    assert "Nothing was saved. Please try again in a minute." in page
    assert _contacts(app) == 0
    assert post_signup(client, app).status_code == 302  # and works once the writer is done
    assert _contacts(app) == 1
