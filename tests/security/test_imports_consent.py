"""Imports must not forge consent. People on a list staff bring in never saw the privacy notice
nor signed up: by default they are imported as pending and each is mailed a confirmation link.
Importing them as active is an explicit choice that needs a statement of why they agreed to be
contacted; the consent log then holds one "imported" event (the statement, the staff member,
the file) and nothing that reads as a sign-up or a confirmation."""

import re

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from jeg_contacts.auth.models import User
from jeg_contacts.contacts.models import ConsentAction, ConsentEvent, Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import (
    audit_entries,
    create_staff,
    csrf_token,
    link_in,
    staff_client,
)
from tests.imports.conftest import count_contacts, csv_bytes, row, write
from tests.imports.web_import import commit, finished, preview_url, upload
from tests.security.selfservice import consent_log, statuses

BASIS = "Participants of the 2025 Almaty workshop, who asked to receive JEG news."


def confirm_by_link(client: FlaskClient, path: str) -> None:
    """Follow a confirmation link as its owner does: open it, and press the button if the page
    asks for one."""
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    form = re.search(r'<form[^>]*method="post"[^>]*action="([^"]*/confirm/[^"]*)"', page.text)
    if form and not form.group(1).endswith("/resend"):
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        data = {"csrf_token": token.group(1)} if token else {}
        assert client.post(form.group(1), data=data).status_code in (200, 302)


def settings_form(client: FlaskClient, url: str, **changes: str) -> dict[str, str]:
    """The settings form of an upload's page as it stands, with `changes`."""
    page = client.get(url).get_data(as_text=True)
    data = {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]}
    chosen = r'<select id="(column-\d+)" name="column-\d+">.*?<option value="([a-z_]*)" selected>'
    data |= dict(re.findall(chosen, page, re.S))
    data |= {"encoding": "auto", "delimiter": "auto", "existing": "skip"}
    data |= {"default_language": "en", "default_type": ""}
    return data | changes


# --- The back office --------------------------------------------------------------------------


def test_a_back_office_import_left_as_it_is_mails_each_new_contact_a_confirmation_link(
    smtp_app, smtp_server
):
    handler, _port = smtp_server
    editor = staff_client(smtp_app, "editor")
    content = csv_bytes([row("ana@example.org"), row("bo@example.org", "Bo", "Berg")])

    url = preview_url(upload(editor, content, "partners.csv"))
    page = editor.get(url).get_data(as_text=True)
    assert "2 new contacts are emailed a confirmation link" in page
    commit(editor, url)

    assert statuses(smtp_app) == {"ana@example.org": "pending", "bo@example.org": "pending"}
    messages = handler.wait_for(2)
    assert sorted(address for _sender, [address] in handler.envelopes) == [
        "ana@example.org",
        "bo@example.org",
    ]
    # One event each, saying who imported them from which file: no sign-up, no confirmation,
    # and no privacy notice they would have agreed to.
    log = consent_log(smtp_app)
    for address in ("ana@example.org", "bo@example.org"):
        [(action, source, _detail, notice)] = log[address]
        assert (action, source, notice) == (
            "imported",
            "imported by editor@unece.test from partners.csv",
            None,
        )

    # The owner of the address confirms: only then are they active, by their own act.
    ana_mail = next(m for m in messages if m["To"].addresses[0].addr_spec == "ana@example.org")
    confirm_by_link(smtp_app.test_client(), link_in(ana_mail, "/confirm/"))
    assert statuses(smtp_app)["ana@example.org"] == "active"
    assert [event[0] for event in consent_log(smtp_app)["ana@example.org"]] == [
        "imported",
        "confirm",
    ]


def test_the_back_office_refuses_an_active_import_without_a_reason(app, editor_client):
    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))

    for basis, reason in (
        ("", "Say why the people on this list agreed to be contacted"),
        (" \r\n\t ", "Say why the people on this list agreed to be contacted"),
        ("They agreed\x00<script>", "This field must be a single line of text."),
        ("x" * 501, "Use at most 500 characters."),
    ):
        response = editor_client.post(
            url, data=settings_form(editor_client, url, status="active", basis=basis)
        )
        assert response.status_code == 400
        assert reason in response.get_data(as_text=True)

    # Nothing was saved: the settings and the dry run are still those of a pending import.
    page = editor_client.get(url).get_data(as_text=True)
    assert 'id="status-pending" value="pending" checked' in page
    assert "1 new contact is emailed a confirmation link" in page
    assert count_contacts(app) == 0


def test_an_active_import_records_the_reason_the_staff_member_and_the_file_once(
    smtp_app, smtp_server
):
    handler, _port = smtp_server
    editor = staff_client(smtp_app, "editor")
    content = csv_bytes([row("ana@example.org"), row("bo@example.org", "Bo", "Berg")])
    url = preview_url(upload(editor, content, "almaty.csv"))

    response = editor.post(url, data=settings_form(editor, url, status="active", basis=BASIS))
    assert response.status_code == 302
    finished(editor, url)
    page = editor.get(url).get_data(as_text=True)
    assert not re.search(r"new contacts? (is|are) emailed a confirmation link", page)
    assert f"with the reason you gave: “{BASIS}”" in page
    commit(editor, url)

    assert statuses(smtp_app) == {"ana@example.org": "active", "bo@example.org": "active"}
    log = consent_log(smtp_app)
    for address in ("ana@example.org", "bo@example.org"):
        [(action, source, detail, notice)] = log[address]
        assert action == "imported"
        assert source == "imported by editor@unece.test from almaty.csv"
        assert BASIS in detail
        assert notice is None
    [entry] = audit_entries(smtp_app, "contacts.imported")
    assert entry.changes["status"] == "active"
    assert entry.changes["basis"] == BASIS
    assert handler.messages == []  # active contacts get no confirmation link


def test_a_forged_commit_cannot_import_as_active_without_a_reason(app, editor_client):
    """The rule is the service's, not only the form's: settings saved without a reason (an
    upload kept from before, a hand-made request) import nobody as active."""
    from jeg_contacts.imports import uploads

    url = preview_url(upload(editor_client, csv_bytes([row("ana@example.org")])))
    token = url.rsplit("/", 1)[1]
    with app.test_request_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.email == "editor@unece.test"))
        stored = uploads.load(token, user_id)
        stored.settings = {**(stored.settings or {}), "status": "active", "basis": ""}
        stored.save()
    editor_client.post(url + "/check", data={"csrf_token": csrf_token(editor_client, url)})
    finished(editor_client, url)
    page = editor_client.get(url).get_data(as_text=True)

    assert "Say why the people on this list agreed to be contacted" in page
    assert "/commit" not in page
    assert count_contacts(app) == 0


# --- The command line -------------------------------------------------------------------------


def test_the_command_line_imports_as_pending_and_mails_confirmation_links(
    smtp_app, smtp_server, tmp_path
):
    handler, _port = smtp_server
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))

    result = smtp_app.test_cli_runner().invoke(args=["contacts", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert statuses(smtp_app) == {"ana@example.org": "pending"}
    handler.wait_for(1)
    assert handler.envelopes[0][1] == ["ana@example.org"]
    [(action, source, _detail, notice)] = consent_log(smtp_app)["ana@example.org"]
    assert (action, source, notice) == (
        "imported",
        "imported by the command line from list.csv",
        None,
    )


@pytest.mark.parametrize("basis", [None, "", "  "])
def test_the_command_line_refuses_active_without_a_basis(app, runner, tmp_path, basis):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))
    args = ["contacts", "import", str(path), "--status", "active"]
    if basis is not None:
        args += ["--basis", basis]

    result = runner.invoke(args=args)

    assert result.exit_code == 2, result.output
    assert "--basis" in result.output
    assert "why the people on this list agreed to be contacted" in result.output
    assert count_contacts(app) == 0


def test_the_command_line_records_the_basis_of_an_active_import(smtp_app, smtp_server, tmp_path):
    handler, _port = smtp_server
    create_staff(smtp_app, "clerk@unece.test", "editor")
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))

    result = smtp_app.test_cli_runner().invoke(
        args=[
            "contacts", "import", str(path), "--status", "active", "--basis", BASIS,
            "--by", "clerk@unece.test",
        ]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert statuses(smtp_app) == {"ana@example.org": "active"}
    [(action, source, detail, notice)] = consent_log(smtp_app)["ana@example.org"]
    assert (action, source, notice) == (
        "imported",
        "imported by clerk@unece.test from list.csv",
        None,
    )
    assert BASIS in detail
    assert handler.messages == []


def test_a_pending_import_stays_within_the_limit_of_confirmation_emails(app, runner, tmp_path):
    app.config["IMPORT_MAX_PENDING"] = 1
    path = write(
        tmp_path, "list.csv", csv_bytes([row("ana@example.org"), row("bo@example.org", "Bo")])
    )

    result = runner.invoke(args=["contacts", "import", str(path)])

    assert result.exit_code == 1, result.output
    assert "Nothing was imported" in result.output
    assert "at most 1 per import" in result.output
    assert count_contacts(app) == 0


def test_no_import_path_writes_sign_up_or_confirm_events(app, runner, tmp_path):
    """Whatever the status (pending, active, or one the file gives), an import writes one
    "imported" event per new contact and never a sign-up or confirmation."""
    header = ["Email", "Given name", "Family name", "Organisation", "Type of organisation",
              "Organisation country", "Topics", "Status"]  # fmt: skip
    rows = [
        [*row("active@example.org"), ""],
        [*row("pending@example.org"), "pending"],
        [*row("unsub@example.org"), "unsubscribed"],
        [*row("bounced@example.org"), "bounced"],
    ]
    path = write(tmp_path, "list.csv", csv_bytes(rows, header=header))

    result = runner.invoke(
        args=["contacts", "import", str(path), "--status", "active", "--basis", BASIS]
    )

    assert result.exit_code == 0, result.output
    with app.app_context():
        actions = db.session.execute(
            sa.select(Contact.email, ConsentEvent.action).join(Contact.consent_events)
        ).all()
        assert sorted(actions) == sorted(
            (email, ConsentAction("imported"))
            for email in (
                "active@example.org",
                "pending@example.org",
                "unsub@example.org",
                "bounced@example.org",
            )
        )
        assert (
            db.session.scalar(sa.select(Contact.status).where(Contact.email == "unsub@example.org"))
            is ContactStatus.UNSUBSCRIBED
        )
