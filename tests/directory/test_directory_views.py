"""The contact list and the contact page, as staff see them."""

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import post_signup
from tests.directory.conftest import make_contact, topic_id


def add_people(app, count: int, **fields) -> None:
    """`count` active contacts named Person 000, Person 001, ... (inserted directly: fast)."""
    with app.app_context():
        for number in range(count):
            db.session.add(
                Contact(
                    given_name="Person",
                    family_name=f"{number:03d}",
                    email=f"person{number}@example.org",
                    email_key=f"person{number}@example.org",
                    link_secret="x",
                    status=ContactStatus.ACTIVE,
                    **fields,
                )
            )
        db.session.commit()


def links(page: str, text: str) -> list[str]:
    """The href of every link whose text contains `text`."""
    return [
        href.replace("&amp;", "&")
        for href, label in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', page, re.S)
        if text in label
    ]


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_directory_lists_contacts_with_their_details(app, viewer_client):
    contact_id = make_contact(
        app, given_name="Zoë", family_name="Müller", email="zoe@example.org", country="AT"
    )

    page = viewer_client.get("/admin/contacts").get_data(as_text=True)

    assert f'href="/admin/contacts/{contact_id}">Zoë Müller</a>' in page
    assert "zoe@example.org" in page
    assert "Umweltbundesamt" in page
    assert "Austria" in page
    assert "Pipeline safety" in page
    assert "<strong>1</strong> contact matches" in page


def test_viewer_sees_no_editing_controls(app, viewer_client, editor_client):
    make_contact(app)

    seen_by_viewer = viewer_client.get("/admin/contacts").get_data(as_text=True)
    seen_by_editor = editor_client.get("/admin/contacts").get_data(as_text=True)

    for control in ("/admin/contacts/new", "/admin/contacts/bulk", 'name="ids"'):
        assert control not in seen_by_viewer
        assert control in seen_by_editor


def test_fifty_per_page_and_page_links_keep_the_filters(app, viewer_client):
    add_people(app, 120, country="DE", language="fr")
    add_people_elsewhere = make_contact(app, family_name="Elsewhere", country="FR")

    first = viewer_client.get("/admin/contacts?country=DE&language=fr&sort=-name")
    page = first.get_data(as_text=True)

    assert first.status_code == 200
    assert page.count('<a href="/admin/contacts/') == 50
    assert "Person 119" in page and "Person 070" in page and "Person 069" not in page
    assert f"/admin/contacts/{add_people_elsewhere}" not in page
    assert "Page 1 of 3" in page
    [next_link] = links(page, "Next")
    assert query(next_link) == {
        "country": ["DE"],
        "language": ["fr"],
        "sort": ["-name"],
        "page": ["2"],
    }

    last = viewer_client.get("/admin/contacts?country=DE&language=fr&sort=-name&page=3")
    assert "Person 000" in last.get_data(as_text=True)
    assert "Page 3 of 3" in last.get_data(as_text=True)


def test_sort_headers_keep_the_filters_and_toggle_direction(app, viewer_client):
    make_contact(app)

    page = viewer_client.get("/admin/contacts?q=silva&status=active&page=1").get_data(as_text=True)

    [by_name] = links(page, "Name")
    [by_date] = links(page, "Signed up")
    assert query(by_name) == {"q": ["silva"], "status": ["active"], "sort": ["-name"]}
    assert query(by_date) == {"q": ["silva"], "status": ["active"], "sort": ["signed_up"]}
    assert 'aria-sort="ascending"' in page


def test_filter_form_shows_the_filters_in_force(app, viewer_client):
    pipelines = topic_id(app, "pipelines")
    make_contact(app)

    page = viewer_client.get(
        f"/admin/contacts?q=Sil&type=ngo&type=university&country=DE&topic={pipelines}"
        "&status=active&since=2026-01-01&sort=email"
    ).get_data(as_text=True)

    assert 'name="q" value="Sil"' in page
    assert '<select id="f-type" name="type" multiple size="4">' in page
    assert '<option value="ngo" selected>' in page
    assert '<option value="university" selected>' in page
    assert '<option value="DE" selected>Germany</option>' in page
    assert f'<option value="{pipelines}" selected>' in page
    assert '<option value="active" selected>' in page
    assert 'name="since" value="2026-01-01"' in page
    assert '<input type="hidden" name="sort" value="email">' in page


def test_empty_directory_and_no_match_say_so(app, viewer_client):
    empty = viewer_client.get("/admin/contacts").get_data(as_text=True)
    assert "There are no contacts yet" in empty

    make_contact(app)
    no_match = viewer_client.get("/admin/contacts?q=nobody").get_data(as_text=True)
    assert "No contacts match these filters." in no_match
    assert "<table" not in no_match

    past_the_end = viewer_client.get("/admin/contacts?page=7").get_data(as_text=True)
    assert "This page is past the end of the list." in past_the_end


def test_absurd_arguments_never_break_the_page(app, viewer_client):
    make_contact(app)
    for arguments in (
        "page=99999999999999999999999",
        "page=-3",
        "page=abc",
        "sort=;drop table contacts",
        "since=2026-13-45&until=x",
        "topic=99999999999999999999",
        "topic=²&topic=٣",
        "q=" + "x" * 5000,
        "status=erased&status=nonsense",
    ):
        response = viewer_client.get(f"/admin/contacts?{arguments}")
        assert response.status_code == 200, arguments


def test_search_text_is_escaped_when_shown_back(app, viewer_client):
    page = viewer_client.get("/admin/contacts?q=<script>alert(1)</script>").get_data(as_text=True)

    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_contact_page_shows_details_consent_log_and_history(app, client, viewer_client):
    post_signup(client, app)
    with app.app_context():
        contact_id = db.session.scalar(sa.select(Contact.id))

    page = viewer_client.get(f"/admin/contacts/{contact_id}").get_data(as_text=True)

    assert "<h1>Zoë Müller" in page
    assert "zoe.mueller@example.org" in page
    assert "Head of industrial safety" in page
    assert "National authority" in page
    assert "Pipeline safety" in page and "International response exercises" in page
    assert "self-service" in page and "topics: pipelines, response-exercises" in page
    assert "No changes by the secretariat have been recorded" in page
    assert f'href="/admin/contacts/{contact_id}/edit"' not in page  # viewers only read


def test_contact_page_escapes_stored_markup(app, viewer_client):
    contact_id = make_contact(app)
    with app.app_context():
        db.session.get(Contact, contact_id).job_title = "<b>Boss</b>"
        db.session.commit()

    page = viewer_client.get(f"/admin/contacts/{contact_id}").get_data(as_text=True)

    assert "<b>Boss</b>" not in page
    assert "&lt;b&gt;Boss&lt;/b&gt;" in page


def test_erased_contact_page_keeps_only_log_and_history(app, editor_client):
    contact_id = make_contact(app, status="erased")

    page = editor_client.get(f"/admin/contacts/{contact_id}").get_data(as_text=True)

    assert f"Erased contact #{contact_id}" in page
    assert "personal data was erased" in page
    assert f"/admin/contacts/{contact_id}/edit" not in page
    assert "erase" in page  # the consent log entry
    edit = editor_client.get(f"/admin/contacts/{contact_id}/edit")
    assert edit.status_code == 302


def test_unknown_contact_is_404(viewer_client, editor_client):
    assert viewer_client.get("/admin/contacts/424242").status_code == 404
    assert viewer_client.get("/admin/contacts/99999999999999999999").status_code == 404
    assert editor_client.get("/admin/contacts/99999999999999999999/edit").status_code == 404


def test_signed_up_column_shows_the_date(app, viewer_client):
    make_contact(app, created_at=datetime(2025, 6, 7, 8, 9, tzinfo=UTC))

    page = viewer_client.get("/admin/contacts").get_data(as_text=True)

    assert ">2025-06-07</time>" in page
