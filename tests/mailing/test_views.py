"""The announcement pages: compose, preview, audience, tests, sending and following a send."""

import html
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jeg_contacts.audiences.services import audience_size
from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailing import tracking
from jeg_contacts.mailing.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    SavedAudience,
)
from tests.conftest import (
    audit_entries,
    csrf_token,
    html_body,
    outbox_messages,
    staff_client,
    text_body,
    topic_ids,
)
from tests.mailing.conftest import HtmlElements, add_contacts
from tests.mailing.ui import (
    NEW,
    announcement,
    compose_form,
    create,
    page,
    post,
    run_worker,
    send_now,
)


@pytest.fixture
def editor(mail_app):
    return staff_client(mail_app, "editor")


def _count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))


def _deliveries(app, announcement_id: int) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Contact.email_key, Delivery.status)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.announcement_id == announcement_id)
        ).all()
        return {email: status.value for email, status in rows}


# --- The list ------------------------------------------------------------------------------


def test_empty_list_invites_editors_to_write_the_first(editor_client):
    text = page(editor_client, "/admin/announcements")
    assert "No announcements yet" in text
    assert 'href="/admin/announcements/new"' in text


def test_viewers_see_the_list_without_the_new_button(app, editor_client, viewer_client):
    create(editor_client, subject_en="Meeting of the Bureau")
    text = page(viewer_client, "/admin/announcements")
    assert "Meeting of the Bureau" in text
    assert "New announcement" not in text
    assert "Editors write them" not in text


def test_list_shows_status_counts_and_pages(mail_app, editor):
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    first = create(editor, subject_en="The first one")
    send_now(editor, first)
    run_worker(mail_app)
    for number in range(tracking.ANNOUNCEMENTS_PER_PAGE):
        create(editor, subject_en=f"Draft number {number}")
    text = page(editor, "/admin/announcements")
    assert "Draft number 24" in text and "The first one" not in text
    assert "Page 1 of 2" in text
    second = page(editor, "/admin/announcements?page=2")
    assert "The first one" in second
    assert re.search(r"2 / 2\s*</td>", second)
    assert "status announcement-status-sent" in second
    only_sent = page(editor, "/admin/announcements?status=sent")
    assert "The first one" in only_sent and "Draft number" not in only_sent
    assert "past the end" in page(editor, "/admin/announcements?page=99")


# --- Composing -----------------------------------------------------------------------------


def test_compose_page_documents_placeholders_and_active_only(editor_client):
    text = page(editor_client, NEW)
    for placeholder in ("given_name", "family_name", "organisation"):
        assert "{{ " + placeholder + " }}" in html.unescape(text)
    assert "Only <strong>active</strong> contacts ever receive announcements" in text
    assert 'sandbox=""' in text
    assert 'src="/static/mailing.js"' in text
    # Every visible control is labelled.
    for control_id in re.findall(r'<(?:input|textarea|select)[^>]*\bid="([^"]+)"', text):
        if control_id in ("csrf_token", "loaded_at"):
            continue
        assert f'for="{control_id}"' in text, control_id


def test_saving_a_draft_stores_texts_audience_and_audits_it(app, editor_client):
    [pipelines] = topic_ids(app, "pipelines")
    announcement_id = create(
        editor_client,
        subject_fr="Atelier",
        body_fr="Bonjour {{ given_name }}",
        topic=[str(pipelines)],
        type=["national_authority", "ngo"],
        country=["KZ", "UA"],
        language=["ru"],
    )
    saved = announcement(app, announcement_id)
    assert saved.status is AnnouncementStatus.DRAFT
    assert saved.kind.value == "activity"
    assert saved.subject_fr == "Atelier"
    assert saved.body_ru is None
    assert saved.criteria == {
        "topic": [str(pipelines)],
        "type": ["national_authority", "ngo"],
        "country": ["KZ", "UA"],
        "language": ["ru"],
    }
    [entry] = audit_entries(app, "announcement.created")
    assert entry.entity_id == announcement_id and entry.actor == "editor@unece.test"
    detail = page(editor_client, f"/admin/announcements/{announcement_id}")
    assert "Draft saved." in detail
    assert "pipelines" in detail  # the audience in words


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"body_en": ""}, "body_en", "Write the text."),
        ({"subject_en": "  "}, "subject_en", "Write a subject."),
        ({"subject_fr": "Atelier"}, "body_fr", "Give both a subject and a text, or neither."),
        ({"body_ru": "Текст"}, "subject_ru", "Give both a subject and a text, or neither."),
        (
            {"subject_en": "Hello\r\nBcc: everyone@example.org"},
            "subject_en",
            "single line of text",
        ),
        ({"subject_en": "x" * 201}, "subject_en", "Use at most 200 characters."),
        ({"body_en": "x" * 100_001}, "body_en", "Use at most 100,000 characters."),
        ({"kind": "spam"}, "kind", "Not a valid choice"),
        ({"saved_audience": "999"}, "saved_audience", "Choose a saved audience from the list."),
    ],
)
def test_invalid_drafts_are_refused_and_change_nothing(
    app, editor_client, overrides, field, message
):
    response = post(editor_client, NEW, compose_form(**overrides))
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert 'class="error-summary"' in text
    assert f'id="{field}-error"' in text or (field == "kind" and 'id="kind-error"' in text)
    assert message in html.unescape(text)
    assert _count(app, Announcement) == 0
    assert _count(app, AuditEntry, AuditEntry.action.like("announcement.%")) == 0


def test_a_rejected_form_keeps_what_was_typed(editor_client):
    response = post(
        editor_client,
        NEW,
        compose_form(body_en="", subject_en="Keep me", country=["KZ"], language=["fr"]),
    )
    text = response.get_data(as_text=True)
    assert 'value="Keep me"' in text
    assert re.search(r'<option value="KZ" selected>', text)
    assert re.search(r'name="language" value="fr" checked', text)


def test_editing_records_what_changed(app, editor_client):
    announcement_id = create(editor_client)
    url = f"/admin/announcements/{announcement_id}/edit"
    form_page = page(editor_client, url)
    loaded_at = re.search(r'name="loaded_at" type="hidden" value="([^"]*)"', form_page).group(1)
    response = post(
        editor_client,
        url,
        compose_form(subject_en="Workshop moved to Astana", loaded_at=loaded_at, language=["fr"]),
    )
    assert response.status_code == 302
    saved = announcement(app, announcement_id)
    assert saved.subject_en == "Workshop moved to Astana"
    assert saved.criteria == {"language": ["fr"]}
    [entry] = audit_entries(app, "announcement.edited")
    assert entry.changes["subject_en"] == [
        "Workshop on tailings safety",
        "Workshop moved to Astana",
    ]
    assert entry.changes["criteria"] == [{}, {"language": ["fr"]}]


def test_an_edit_over_someone_elses_save_is_refused(app, editor_client):
    announcement_id = create(editor_client)
    url = f"/admin/announcements/{announcement_id}/edit"
    stale = re.search(r'name="loaded_at" type="hidden" value="([^"]*)"', page(editor_client, url))
    with app.app_context():
        db.session.get(Announcement, announcement_id).subject_en = "Changed elsewhere"
        db.session.commit()
    response = post(editor_client, url, compose_form(subject_en="Mine", loaded_at=stale.group(1)))
    assert response.status_code == 409
    assert "Someone else saved this announcement" in response.get_data(as_text=True)
    assert announcement(app, announcement_id).subject_en == "Changed elsewhere"


def test_only_drafts_and_scheduled_announcements_can_be_edited(mail_app, editor):
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    url = f"/admin/announcements/{announcement_id}/edit"
    response = editor.get(url)
    assert response.status_code == 302
    response = post(editor, url, compose_form(subject_en="Too late"))
    assert response.status_code == 302
    assert announcement(mail_app, announcement_id).subject_en == "Workshop on tailings safety"
    assert "only drafts and scheduled" in page(editor, f"/admin/announcements/{announcement_id}")


# --- Preview -------------------------------------------------------------------------------


HOSTILE = (
    "Dear {{ given_name }} of {{organisation}},\n\n"
    "<script>alert(1)</script>\n\n<iframe src='https://evil.example'></iframe>\n\n"
    "[click](javascript:alert(1)) and [report](https://unece.org/report) "
    '<a href="javascript:alert(2)" onclick="x()">raw</a> {{ config }} {% if 1 %}x{% endif %}'
)


def test_preview_is_sanitised_and_personalised_with_sample_details(editor_client):
    response = post(
        editor_client,
        "/admin/announcements/preview",
        compose_form(subject_en="Hello {{ given_name }}", body_en=HOSTILE),
    )
    assert response.status_code == 200
    shown = response.get_json()
    assert shown["language"] == "en" and shown["fallback"] is False
    elements = HtmlElements()
    elements.feed(shown["html"])
    assert not {"script", "iframe", "img", "object", "embed"} & set(elements.tags)
    assert not [name for name, _value in elements.attributes if name.startswith("on")]
    hrefs = [value for name, value in elements.attributes if name == "href"]
    assert hrefs and all(href.startswith(("http://", "https://", "mailto:")) for href in hrefs)
    assert 'href="https://unece.org/report"' in shown["html"]
    assert "Dear Anna of Example Ministry of Environment" in shown["html"]
    assert "Dear Anna of Example Ministry of Environment" in shown["text"]
    # Anything else that looks like template code is just text.
    assert "{{ config }}" in shown["text"] and "{% if 1 %}x{% endif %}" in shown["text"]
    assert "test-secret-key" not in shown["html"] + shown["text"]
    # The footer is there, with links that manage nobody's subscription.
    assert "http://jeg.test/new-link" in shown["text"]
    assert "/unsubscribe/" not in shown["text"]


def test_preview_in_a_language_without_a_version_falls_back_to_english(editor_client):
    shown = post(
        editor_client,
        "/admin/announcements/preview",
        compose_form(
            subject_fr="Atelier", body_fr="Bonjour {{ given_name }}", preview_language="ru"
        ),
    ).get_json()
    assert shown["fallback"] is True and shown["language"] == "en"
    assert shown["subject"] == "Workshop on tailings safety"
    french = post(
        editor_client,
        "/admin/announcements/preview",
        compose_form(
            subject_fr="Atelier", body_fr="Bonjour {{ given_name }}", preview_language="fr"
        ),
    ).get_json()
    assert french["subject"] == "Atelier"
    assert "Bonjour Anna" in french["text"]
    assert "Modifier vos thèmes ou votre langue" in french["text"] or "thèmes" in french["text"]


def test_preview_without_javascript_renders_in_the_page_and_saves_nothing(app, editor_client):
    response = post(editor_client, NEW, compose_form(body_en=HOSTILE, action="preview"))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Nothing is saved until you press" in text
    frame = re.search(r'<iframe id="preview-html"[^>]*sandbox=""[^>]*srcdoc="([^"]*)"', text)
    assert frame, "the preview is a sandboxed iframe"
    srcdoc = html.unescape(frame.group(1))
    assert "Dear Anna" in srcdoc and "<script" not in srcdoc.lower()
    assert _count(app, Announcement) == 0


# --- Audience ------------------------------------------------------------------------------


def test_audience_count_matches_the_service_and_counts_only_active_contacts(mail_app, editor):
    add_contacts(mail_app, ["de1@example.org", "de2@example.org"], country="DE")
    add_contacts(mail_app, ["kz@example.org"], country="KZ", language="ru")
    add_contacts(mail_app, ["gone@example.org"], country="KZ", status="unsubscribed")
    add_contacts(mail_app, ["new@example.org"], country="KZ", status="pending")
    for query, criteria, expected in [
        ("", {}, 3),
        ("country=KZ", {"country": ["KZ"]}, 1),
        ("country=KZ&country=DE", {"country": ["KZ", "DE"]}, 3),
        ("language=ru", {"language": ["ru"]}, 1),
        ("type=ngo", {"type": ["ngo"]}, 0),
        ("country=XX&topic=nope&status=unsubscribed", {}, 3),  # meaningless values ignored
    ]:
        data = editor.get(f"/admin/announcements/audience-count?{query}").get_json()
        with mail_app.app_context():
            assert data["count"] == audience_size(criteria) == expected, query
        assert data["text"] == f"{expected} active contact" + ("" if expected == 1 else "s")


def test_compose_page_shows_the_count_without_javascript(mail_app, editor):
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    assert "<strong>2</strong> active contacts" in page(editor, NEW)


def test_saving_an_audience_lets_later_announcements_reuse_it(mail_app, editor):
    add_contacts(mail_app, ["kz1@example.org"], country="KZ")
    add_contacts(mail_app, ["de@example.org"], country="DE")
    response = post(
        editor,
        NEW,
        compose_form(country=["KZ"], audience_name="Kazakh authorities", action="save-audience"),
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Saved the audience “Kazakh authorities” (1 active contact now)" in text
    assert 'value="Workshop on tailings safety"' in text  # the draft being written is kept
    with mail_app.app_context():
        saved = db.session.scalar(sa.select(SavedAudience))
        assert saved.name == "Kazakh authorities" and saved.criteria == {"country": ["KZ"]}
        saved_id = saved.id
    assert re.search(
        rf'<option selected value="{saved_id}">|<option value="{saved_id}" selected', text
    )
    [entry] = audit_entries(mail_app, "saved_audience.saved")
    assert entry.entity_id == saved_id

    # Re-evaluated when used: a contact added since is counted and sent to.
    add_contacts(mail_app, ["kz2@example.org"], country="KZ")
    count = editor.get(f"/admin/announcements/audience-count?saved_audience={saved_id}")
    assert count.get_json()["count"] == 2
    announcement_id = create(editor, saved_audience=str(saved_id), country=[])
    assert "Kazakh authorities" in page(editor, f"/admin/announcements/{announcement_id}")
    send_now(editor, announcement_id)
    assert set(_deliveries(mail_app, announcement_id)) == {"kz1@example.org", "kz2@example.org"}


def test_an_audience_name_in_use_is_only_replaced_when_asked(mail_app, editor):
    post(editor, NEW, compose_form(country=["KZ"], audience_name="Ours", action="save-audience"))
    response = post(
        editor, NEW, compose_form(country=["UA"], audience_name="Ours", action="save-audience")
    )
    assert response.status_code == 400
    assert "There is already a saved audience called “Ours”" in response.get_data(as_text=True)
    with mail_app.app_context():
        assert db.session.scalar(sa.select(SavedAudience.criteria)) == {"country": ["KZ"]}
    response = post(
        editor,
        NEW,
        compose_form(
            country=["UA"], audience_name="Ours", replace_audience="y", action="save-audience"
        ),
    )
    assert response.status_code == 200
    with mail_app.app_context():
        assert db.session.scalar(sa.select(SavedAudience.criteria)) == {"country": ["UA"]}
    empty = post(editor, NEW, compose_form(audience_name="", action="save-audience"))
    assert empty.status_code == 400 and "Give the audience a name" in empty.get_data(as_text=True)


# --- Test messages -------------------------------------------------------------------------


def test_a_test_message_arrives_marked_and_built_like_the_real_one(smtp_app, smtp_server, tmp_path):
    handler, _port = smtp_server
    editor = staff_client(smtp_app, "editor")
    announcement_id = create(editor, subject_fr="Atelier", body_fr="Bonjour {{ given_name }}")
    response = post(
        editor,
        f"/admin/announcements/{announcement_id}/test",
        {"email": "me@example.org", "language": "fr"},
    )
    assert response.status_code == 302
    [message] = handler.wait_for(1)
    assert handler.envelopes[0][1] == ["me@example.org"]
    assert str(message["Subject"]) == "[TEST] Atelier"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Bonjour Anna" in text_body(message)
    assert "Bonjour Anna" in html_body(message)
    assert "/unsubscribe/" not in text_body(message)  # nobody's real link
    [entry] = audit_entries(smtp_app, "announcement.test_sent")
    assert "me@example.org" in entry.summary and entry.entity_id == announcement_id
    detail = page(editor, f"/admin/announcements/{announcement_id}")
    assert "Test sent to me@example.org" in html.unescape(detail)
    assert announcement(smtp_app, announcement_id).status is AnnouncementStatus.DRAFT


def test_a_test_to_a_contact_carries_their_details_and_falls_back_to_english(smtp_app, smtp_server):
    handler, _port = smtp_server
    add_contacts(smtp_app, ["olga@example.org"], given_name="Olga", organisation_name="Kazhydromet")
    editor = staff_client(smtp_app, "editor")
    announcement_id = create(editor, body_en="Dear {{ given_name }} of {{ organisation }}")
    post(
        editor,
        f"/admin/announcements/{announcement_id}/test",
        {"email": "OLGA@example.org", "language": "ru"},
    )
    [message] = handler.wait_for(1)
    assert str(message["Subject"]) == "[TEST] Workshop on tailings safety"
    assert "Dear Olga of Kazhydromet" in text_body(message)
    assert "no Russian version" in html.unescape(
        page(editor, f"/admin/announcements/{announcement_id}")
    )


def test_without_smtp_the_test_goes_to_the_outbox(app, editor_client):
    announcement_id = create(editor_client)
    # The first administrator's own address is admin@localhost: tests may go there.
    post(
        editor_client,
        f"/admin/announcements/{announcement_id}/test",
        {"email": "admin@localhost", "language": "en"},
    )
    [message] = outbox_messages(app)
    assert str(message["Subject"]) == "[TEST] Workshop on tailings safety"
    assert str(message["To"].addresses[0].addr_spec) == "admin@localhost"
    assert "outbox" in page(editor_client, f"/admin/announcements/{announcement_id}")


def test_without_smtp_the_worker_writes_the_announcement_to_the_outbox(app, editor_client):
    add_contacts(app, ["a@example.org", "b@example.org"])
    announcement_id = create(editor_client)
    send_now(editor_client, announcement_id)
    run_worker(app)
    messages = outbox_messages(app)
    assert sorted(str(m["To"].addresses[0].addr_spec) for m in messages) == [
        "a@example.org",
        "b@example.org",
    ]
    assert announcement(app, announcement_id).status is AnnouncementStatus.SENT
    assert "250 written to the outbox" in page(
        editor_client, f"/admin/announcements/{announcement_id}"
    )


@pytest.mark.parametrize("address", ["", "not an address", "me@example.org\r\nBcc: x@y.org"])
def test_a_test_to_a_bad_address_is_refused(app, editor_client, address):
    announcement_id = create(editor_client)
    response = post(
        editor_client,
        f"/admin/announcements/{announcement_id}/test",
        {"email": address, "language": "en"},
    )
    assert response.status_code == 400
    assert 'class="error-summary"' in response.get_data(as_text=True)
    assert outbox_messages(app) == []
    assert audit_entries(app, "announcement.test_sent") == []


def test_template_syntax_in_a_contacts_name_stays_inert(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(
        mail_app,
        ["curious@example.org"],
        given_name="{{ config }}",
        family_name="{% raw %}{{7*7}}{% endraw %}",
        organisation_name="{{ self.__init__.__globals__ }}",
    )
    announcement_id = create(
        editor, body_en="Dear {{ given_name }} {{ family_name }} of {{ organisation }}."
    )
    send_now(editor, announcement_id)
    run_worker(mail_app)
    [message] = handler.received
    expected = "Dear {{ config }} {% raw %}{{7*7}}{% endraw %} of {{ self.__init__.__globals__ }}."
    assert expected in text_body(message)
    assert html.escape(expected, quote=False) in html_body(message) or expected in html_body(
        message
    )
    everything = text_body(message) + html_body(message) + str(message["To"])
    # Links carry random tokens, which may well hold "49"; the names never sit inside a link.
    assert "49" not in re.sub(r"https?://[^\s\"'<>]+", "", everything)
    assert "test-secret-key" not in everything and "SQLALCHEMY" not in everything


# --- Sending -------------------------------------------------------------------------------


def test_send_confirmation_shows_who_gets_which_version(mail_app, editor):
    add_contacts(mail_app, ["en@example.org"])
    add_contacts(mail_app, ["fr@example.org"], language="fr")
    add_contacts(mail_app, ["ru1@example.org", "ru2@example.org"], language="ru")
    announcement_id = create(editor, subject_fr="Atelier", body_fr="Bonjour")
    text = html.unescape(page(editor, f"/admin/announcements/{announcement_id}/send"))
    assert "Send now to 4 recipients" in text
    assert "Schedule for 4 recipients" in text
    assert "the English version (there is no Russian one)" in text
    assert "the French version" in text
    assert "in UTC" in text
    assert _count(mail_app, Delivery) == 0  # the confirmation page changes nothing


def test_send_now_queues_every_recipient_and_the_worker_delivers(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(mail_app, [f"p{n}@example.org" for n in range(5)])
    add_contacts(mail_app, ["away@example.org"], status="unsubscribed")
    announcement_id = create(editor)
    response = send_now(editor, announcement_id)
    assert response.status_code == 302
    assert _deliveries(mail_app, announcement_id) == {
        f"p{n}@example.org": "queued" for n in range(5)
    }
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SENDING
    [entry] = audit_entries(mail_app, "announcement.send_started")
    assert entry.changes["recipients"] == 5
    assert entry.actor == "editor@unece.test" and entry.user_id is not None
    status = editor.get(f"/admin/announcements/{announcement_id}/status.json").get_json()
    assert status["status"] == "sending" and status["total"] == 5 and status["done"] == 0
    assert "No delivery worker is running" in status["warning"]

    run_worker(mail_app)

    assert handler.recipients() == {f"p{n}@example.org": 1 for n in range(5)}
    status = editor.get(f"/admin/announcements/{announcement_id}/status.json").get_json()
    assert status["status"] == "sent" and status["finished"] is True
    assert status["counts"]["sent"] == 5 and status["percent"] == 100
    assert status["summary"] == "5 of 5 done (100%)"
    detail = page(editor, f"/admin/announcements/{announcement_id}")
    assert '<progress id="send-progress" max="5" value="5"' in detail
    assert "5 of 5 done (100%)" in detail


def test_sending_twice_or_to_nobody_is_refused(mail_app, editor):
    nobody = create(editor, country=["KZ"])
    response = send_now(editor, nobody)
    assert response.status_code == 400
    assert "there is nobody to send to" in response.get_data(as_text=True)
    assert announcement(mail_app, nobody).status is AnnouncementStatus.DRAFT

    add_contacts(mail_app, ["a@example.org"])
    twice = create(editor)
    send_now(editor, twice)
    again = post(editor, f"/admin/announcements/{twice}/send", {"when": "now"})
    assert again.status_code == 302
    assert _count(mail_app, Delivery, Delivery.announcement_id == twice) == 1
    assert "already sending" in page(editor, f"/admin/announcements/{twice}")


def test_a_send_scheduled_in_the_future_waits(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    announcement_id = create(editor)
    when = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    url = f"/admin/announcements/{announcement_id}/send"
    response = post(editor, url, {"when": "later", "send_at": when.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    saved = announcement(mail_app, announcement_id)
    assert saved.status is AnnouncementStatus.SCHEDULED
    assert saved.scheduled_at == when  # the input is read as UTC
    assert _count(mail_app, Delivery) == 2
    [entry] = audit_entries(mail_app, "announcement.scheduled")
    assert entry.changes["scheduled_at"] == when.isoformat()

    run_worker(mail_app)

    assert handler.received == []
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SCHEDULED
    assert set(_deliveries(mail_app, announcement_id).values()) == {"queued"}
    detail = page(editor, f"/admin/announcements/{announcement_id}")
    assert f"Starts at {when:%Y-%m-%d %H:%M} UTC" in detail


@pytest.mark.parametrize(
    ("send_at", "message"),
    [
        ("", "Choose the date and time to send at (UTC)."),
        ("2001-01-01T09:00", "Choose a time in the future"),
        ("2999-01-01T09:00", "Choose a time within a year from now."),
        ("tomorrow", "Not a valid datetime value."),
    ],
)
def test_a_bad_schedule_time_is_refused(mail_app, editor, send_at, message):
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = create(editor)
    url = f"/admin/announcements/{announcement_id}/send"
    response = post(editor, url, {"when": "later", "send_at": send_at}, token_from=url)
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.DRAFT
    assert _count(mail_app, Delivery) == 0


def test_pause_resume_and_cancel_from_the_page(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org", "b@example.org"])
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    base = f"/admin/announcements/{announcement_id}"

    assert post(editor, f"{base}/pause").status_code == 302
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.PAUSED
    run_worker(mail_app)
    assert handler.received == []
    assert "Paused" in page(editor, base)

    post(editor, f"{base}/resume")
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SENDING
    run_worker(mail_app)
    assert handler.recipients() == {"a@example.org": 1, "b@example.org": 1}

    # Nothing left to cancel once sent: refused, and said so.
    assert editor.get(f"{base}/cancel").status_code == 302
    post(editor, f"{base}/cancel")
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SENT
    actions = [entry.action for entry in audit_entries(mail_app, "announcement.paused")]
    actions += [entry.action for entry in audit_entries(mail_app, "announcement.resumed")]
    assert actions == ["announcement.paused", "announcement.resumed"]


def test_cancelling_asks_first_then_skips_what_is_left(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org", "b@example.org", "c@example.org"])
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    base = f"/admin/announcements/{announcement_id}"
    confirm = page(editor, f"{base}/cancel")
    assert "<strong>3</strong> message(s) not yet sent will not go out" in confirm
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SENDING

    post(editor, f"{base}/cancel")
    run_worker(mail_app)

    assert handler.received == []
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.CANCELLED
    assert set(_deliveries(mail_app, announcement_id).values()) == {"skipped"}
    [entry] = audit_entries(mail_app, "announcement.cancelled")
    assert entry.changes == {"count": 3}
    assert "3 message(s) not yet sent will not go out" in page(editor, base)


def test_discarding_a_draft(mail_app, editor):
    announcement_id = create(editor)
    assert "Discard this draft?" in page(editor, f"/admin/announcements/{announcement_id}/cancel")
    post(editor, f"/admin/announcements/{announcement_id}/cancel")
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.CANCELLED


def test_a_scheduled_send_paused_and_resumed_waits_for_its_time(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = create(editor)
    when = (utcnow() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    post(editor, f"/admin/announcements/{announcement_id}/send", {"when": "later", "send_at": when})
    post(editor, f"/admin/announcements/{announcement_id}/pause")
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.PAUSED
    post(editor, f"/admin/announcements/{announcement_id}/resume")
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SCHEDULED
    run_worker(mail_app)
    assert handler.received == []


def test_failed_deliveries_show_in_the_log_and_can_be_retried(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    add_contacts(mail_app, ["ok@example.org", "perm@example.org", "other@example.org"])
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    run_worker(mail_app)
    base = f"/admin/announcements/{announcement_id}"

    failed_only = page(editor, f"{base}?status=failed")
    assert "perm@example.org" in failed_only
    assert "ok@example.org" not in failed_only
    assert "550 5.1.1 mailbox unavailable" in failed_only
    assert "Retry 1 failed delivery" in failed_only
    searched = page(editor, f"{base}?q=OTHER")
    assert "other@example.org" in searched and "ok@example.org" not in searched
    assert "No delivery matches “nobody”" in html.unescape(page(editor, f"{base}?q=nobody"))
    listing = page(editor, "/admin/announcements")
    assert "1 failed" in listing

    assert post(editor, f"{base}/retry").status_code == 302
    assert _deliveries(mail_app, announcement_id)["perm@example.org"] == "queued"
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.SENDING
    [entry] = audit_entries(mail_app, "announcement.retried")
    assert entry.changes == {"count": 1}
    run_worker(mail_app)
    assert handler.attempts["perm@example.org"] == 2
    assert "Queued 1 failed delivery(ies) again." in page(editor, base)


def test_delivery_log_pages(mail_app, editor):
    add_contacts(
        mail_app, [f"r{n:03d}@example.org" for n in range(tracking.DELIVERIES_PER_PAGE + 3)]
    )
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    first = page(editor, f"/admin/announcements/{announcement_id}")
    assert "Page 1 of 2" in first
    second = page(editor, f"/admin/announcements/{announcement_id}?page=2")
    assert second.count('class="status delivery-status-queued"') == 3


def test_status_json_reports_rate_and_time_left(mail_app, editor):
    add_contacts(mail_app, [f"r{n}@example.org" for n in range(10)])
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    with mail_app.app_context():
        # Four sent in the last half minute, six to go.
        announcement_row = db.session.get(Announcement, announcement_id)
        announcement_row.started_at = utcnow() - timedelta(seconds=30)
        ids = db.session.scalars(sa.select(Delivery.id).order_by(Delivery.id).limit(4)).all()
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(status=DeliveryStatus.SENT, sent_at=utcnow())
        )
        db.session.commit()
    response = editor.get(f"/admin/announcements/{announcement_id}/status.json")
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert data["done"] == 4 and data["total"] == 10 and data["percent"] == 40
    assert 7.5 <= data["rate_per_minute"] <= 8.5  # 4 in ~30 s
    assert 40 <= data["eta_seconds"] <= 50  # 6 left at ~0.13 per second
    assert data["eta_text"] == "Time left: less than a minute."
    assert json.loads(json.dumps(data)) == data


# --- Publishing and copying -----------------------------------------------------------------


def test_only_sent_announcements_can_be_published(mail_app, editor):
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = create(editor)
    base = f"/admin/announcements/{announcement_id}"
    post(editor, f"{base}/publish", {"published": "1"})
    assert announcement(mail_app, announcement_id).published is False
    assert "Only an announcement that has been sent can be published." in page(editor, base)

    send_now(editor, announcement_id)
    run_worker(mail_app)
    post(editor, f"{base}/publish", {"published": "1"})
    assert announcement(mail_app, announcement_id).published is True
    assert mail_app.test_client().get(f"/announcements/{announcement_id}").status_code == 200
    post(editor, f"{base}/publish", {"published": "0"})
    assert announcement(mail_app, announcement_id).published is False
    assert mail_app.test_client().get(f"/announcements/{announcement_id}").status_code == 404
    actions = [e.action for e in audit_entries(mail_app, "announcement.published")]
    actions += [e.action for e in audit_entries(mail_app, "announcement.unpublished")]
    assert actions == ["announcement.published", "announcement.unpublished"]


def test_copying_into_a_new_draft(mail_app, editor):
    add_contacts(mail_app, ["a@example.org"])
    original = create(editor, subject_ru="Семинар", body_ru="Текст", country=["DE"])
    send_now(editor, original)
    response = post(editor, f"/admin/announcements/{original}/copy")
    copy_id = int(re.search(r"/announcements/(\d+)/edit", response.headers["Location"]).group(1))
    copied = announcement(mail_app, copy_id)
    assert copied.status is AnnouncementStatus.DRAFT
    assert (copied.subject_ru, copied.body_ru, copied.criteria) == (
        "Семинар",
        "Текст",
        {"country": ["DE"]},
    )


# --- Who may do what -------------------------------------------------------------------------


def test_viewers_can_follow_but_not_change_anything(mail_app, flaky_smtp):
    editor = staff_client(mail_app, "editor")
    viewer = staff_client(mail_app, "viewer")
    add_contacts(mail_app, ["a@example.org"])
    announcement_id = create(editor)
    base = f"/admin/announcements/{announcement_id}"
    detail = page(viewer, base)
    assert "Send a test" not in detail and "Send or schedule" not in detail
    assert 'method="post" action="/admin/announcements' not in detail
    assert viewer.get(f"{base}/status.json").status_code == 200
    assert viewer.get("/admin/announcements/audience-count").status_code == 200

    token = csrf_token(viewer, "/admin/account/password")
    posts = [
        NEW,
        "/admin/announcements/preview",
        f"{base}/edit",
        f"{base}/test",
        f"{base}/send",
        f"{base}/pause",
        f"{base}/resume",
        f"{base}/retry",
        f"{base}/cancel",
        f"{base}/publish",
        f"{base}/copy",
    ]
    for url in posts:
        data = {**compose_form(), "email": "v@example.org", "when": "now", "published": "1"}
        assert viewer.post(url, data={"csrf_token": token, **data}).status_code == 403, url
    for url in (NEW, f"{base}/edit", f"{base}/send", f"{base}/cancel"):
        assert viewer.get(url).status_code == 403, url
    assert announcement(mail_app, announcement_id).status is AnnouncementStatus.DRAFT
    assert _count(mail_app, Delivery) == 0
    assert _count(mail_app, Announcement) == 1


def test_anonymous_visitors_are_sent_to_the_login(client):
    for url in (
        "/admin/announcements",
        "/admin/announcements/1",
        "/admin/announcements/1/status.json",
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login")


def test_unknown_announcements_are_404(editor_client):
    for url in ("/admin/announcements/999", "/admin/announcements/99999999999/status.json"):
        assert editor_client.get(url).status_code == 404
    with_contacts = editor_client.get("/admin/announcements/999/send")
    assert with_contacts.status_code == 404


def test_contact_status_changes_after_sending_are_respected(mail_app, flaky_smtp, editor):
    handler, _port = flaky_smtp
    ids = add_contacts(mail_app, ["stay@example.org", "leave@example.org"])
    announcement_id = create(editor)
    send_now(editor, announcement_id)
    with mail_app.app_context():
        db.session.get(Contact, ids[1]).status = ContactStatus.UNSUBSCRIBED
        db.session.commit()
    run_worker(mail_app)
    assert handler.recipients() == {"stay@example.org": 1}
    skipped = page(editor, f"/admin/announcements/{announcement_id}?status=skipped")
    assert "leave@example.org" in skipped and "contact no longer active" in skipped
