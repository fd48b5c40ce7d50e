"""Addresses beyond ASCII. A local part in another script ("zoë@", "анна@") would need
SMTPUTF8 at every mail server on its way: it is refused, with a message that says why, at
sign-up, when staff add a contact and on import. A domain in another script is kept and
sent in its IDNA form, which every relay takes without SMTPUTF8."""

import html
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from tests.conftest import free_port, make_app, outbox_messages, post_signup, staff_client
from tests.directory.test_contact_changes import post_new
from tests.imports.conftest import contacts_by_email, csv_bytes, row, write
from tests.mailer.test_session import CountingHandler

REFUSAL = "Mail servers do not all accept letters such as ä, é or я before the @-sign"


@pytest.fixture
def relay():
    """A relay without SMTPUTF8."""
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.mark.parametrize("address", ["zoë@example.org", "анна@example.org"])
def test_sign_up_with_a_non_ascii_local_part_is_refused_clearly(app: Flask, address: str) -> None:
    response = post_signup(app.test_client(), app, email=address)

    assert response.status_code == 400
    assert REFUSAL in html.unescape(response.get_data(as_text=True))
    assert outbox_messages(app) == []


def test_staff_cannot_add_a_contact_with_a_non_ascii_local_part(app: Flask) -> None:
    editor = staff_client(app, "editor")
    response = post_new(app, editor, email="zoë@example.org")

    assert response.status_code == 400
    assert REFUSAL in html.unescape(response.get_data(as_text=True))


def test_import_rejects_a_non_ascii_local_part_with_the_reason(app: Flask, tmp_path: Path) -> None:
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org"), row("zoë@example.org")]))

    result = app.test_cli_runner().invoke(args=["contacts", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert f"reject     zoë@example.org  Email: {REFUSAL}" in result.stdout
    assert set(contacts_by_email(app)) == {"ana@example.org"}


def test_a_domain_in_another_script_goes_out_in_idna_form_without_smtputf8(
    tmp_path: Path, relay
) -> None:
    handler, port = relay
    app = make_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=5)

    response = post_signup(app.test_client(), app, email="zoe@bücher.example")
    assert response.status_code == 302

    assert handler.envelopes == [["zoe@xn--bcher-kva.example"]]
    assert handler.mail_options == [[]]
