"""The import limits: configurable from the environment, and a file right at the size limit
gets through while a bigger one gets the import's own message, not a bare 413."""

import pytest

from jeg_contacts import create_app
from jeg_contacts.config import ConfigurationError
from tests.conftest import make_app, staff_client
from tests.imports.conftest import HEADER, count_contacts, csv_bytes, row
from tests.imports.web_import import post_file, preview_url, upload

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    for name in ("IMPORT_MAX_BYTES", "IMPORT_MAX_ROWS", "IMPORT_MAX_PENDING", "MAX_CONTENT_LENGTH"):
        monkeypatch.delenv(name, raising=False)


def test_the_limits_have_defaults_and_the_request_limit_leaves_room_for_the_form():
    config = create_app().config

    assert config["IMPORT_MAX_BYTES"] == 64 * MB
    assert config["IMPORT_MAX_ROWS"] == 200_000
    assert config["IMPORT_MAX_PENDING"] == 1000
    assert config["MAX_CONTENT_LENGTH"] == 64 * MB + 64 * 1024


def test_the_limits_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("IMPORT_MAX_BYTES", str(50 * MB))
    monkeypatch.setenv("IMPORT_MAX_ROWS", "500000")
    monkeypatch.setenv("IMPORT_MAX_PENDING", "10")

    config = create_app().config

    assert (config["IMPORT_MAX_BYTES"], config["IMPORT_MAX_ROWS"]) == (50 * MB, 500_000)
    assert config["IMPORT_MAX_PENDING"] == 10
    assert config["MAX_CONTENT_LENGTH"] == 50 * MB + 64 * 1024


def test_an_explicit_request_limit_is_kept(monkeypatch):
    monkeypatch.setenv("MAX_CONTENT_LENGTH", str(8 * MB))

    assert create_app().config["MAX_CONTENT_LENGTH"] == 8 * MB


def test_a_limit_that_is_not_a_number_refuses_to_start(monkeypatch):
    monkeypatch.setenv("IMPORT_MAX_ROWS", "lots")

    with pytest.raises(ConfigurationError, match="IMPORT_MAX_ROWS"):
        create_app()


def file_of(size: int) -> bytes:
    """A CSV of exactly `size` bytes: a few contacts, each with a long note in a column the
    import does not read (notes stay under the 131,072 characters a cell may hold)."""
    header = [*HEADER, "Notes"]
    parts = [csv_bytes([], header=header)]
    length, number = len(parts[0]), 0
    while length < size:
        line = csv_bytes([[*row(f"p{number}@example.org"), ""]], header=header)
        line = line[len(parts[0]) :]  # without the header
        room = size - length - len(line)
        assert room >= 0, "too small for one more row"
        # The last row fills the file exactly; the others leave room for one more row.
        note = room if room <= 100_000 else min(100_000, room - len(line) - 10)
        parts.append(line.replace(b",\r\n", b"," + b"n" * note + b"\r\n"))
        length += len(parts[-1])
        number += 1
    content = b"".join(parts)
    assert len(content) == size
    return content


def test_a_file_of_exactly_the_import_limit_is_accepted(tmp_path):
    app = make_app(tmp_path)
    client = staff_client(app, "editor")
    content = file_of(app.config["IMPORT_MAX_BYTES"])

    url = preview_url(upload(client, content))

    page = client.get(url).get_data(as_text=True)
    assert "64.0 MB" in page
    assert "to add" in page
    assert count_contacts(app) == 0


@pytest.mark.parametrize("extra", [1, 1 * MB], ids=["one byte over", "a megabyte over"])
def test_a_file_over_the_import_limit_gets_the_import_message(tmp_path, extra):
    app = make_app(tmp_path)
    client = staff_client(app, "editor")

    response = post_file(client, file_of(app.config["IMPORT_MAX_BYTES"] + extra))

    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "The file is larger than 64.0 MB, the most that can be imported at once." in page
    assert "Upload and check" in page  # the upload form again, not a bare error page
