"""Bad or hostile sign-up input: a clear message, status 400, nothing written."""

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus, Organisation
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, outbox_messages, post_signup, signup_form


def _counts(app) -> tuple[int, int]:
    with app.app_context():
        contacts = db.session.scalar(sa.select(sa.func.count()).select_from(Contact))
        organisations = db.session.scalar(sa.select(sa.func.count()).select_from(Organisation))
        return contacts, organisations


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "Enter a valid email address"),
        ({"email": "zoe@example..org"}, "email", "Enter a valid email address"),
        ({"email": ""}, "email", "This field is required"),
        ({"consent": ""}, "consent", "Tick the box to agree"),
        ({"topics": []}, "topics", "Choose at least one topic"),
        ({"topics": ["999999"]}, "topics", "Choose topics from the list"),
        ({"topics": ["abc"]}, "topics", "Choose topics from the list"),
        ({"given_name": "x" * 101}, "given_name", "Use at most 100 characters"),
        ({"organisation_name": "o" * 201}, "organisation_name", "Use at most 200 characters"),
        ({"email": "a" * 250 + "@example.org"}, "email", "Use at most 254 characters"),
        ({"given_name": "Zoë\r\nBcc: evil@example.org"}, "given_name", "single line"),
        ({"family_name": "Müller\nX-Injected: 1"}, "family_name", "single line"),
        ({"organisation_name": "UBA\r\n"}, "organisation_name", None),
        ({"email": "zoe@example.org\r\nBcc: evil@example.org"}, "email", "single line"),
        ({"job_title": "Chief\u2028Officer"}, "job_title", "single line"),
        ({"given_name": "<script>alert(1)</script>"}, "given_name", "cannot contain"),
        ({"organisation_name": "<b>UBA</b>"}, "organisation_name", "cannot contain"),
        ({"organisation_country": "XX"}, "organisation_country", "Choose a country"),
        ({"organisation_country": ""}, "organisation_country", "This field is required"),
        ({"stakeholder_type": "spy_agency"}, "stakeholder_type", "Not a valid choice"),
        ({"language": "de"}, "language", "Not a valid choice"),
        ({"phone": "call me maybe"}, "phone", "Use digits"),
        ({"organisation_website": "javascript:alert(1)"}, "organisation_website", "https://"),
    ],
)
def test_invalid_signup_is_refused_with_a_message_and_writes_nothing(
    app, client, overrides, field, message
):
    response = post_signup(client, app, **overrides)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'role="alert"' in page
    assert f'id="{field}-error"' in page or (field == "topics" and "topics-error" in page)
    if message:
        assert message in page
    assert _counts(app) == (0, 0)
    assert outbox_messages(app) == []


def test_html_in_a_refused_name_is_shown_escaped(app, client):
    response = post_signup(client, app, given_name="<script>alert(1)</script>")
    page = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_names_with_encoded_words_are_kept_but_cannot_inject_headers(app, client):
    response = post_signup(client, app, given_name="=?UTF-8?Q?=0A?=Bcc: evil@example.org")
    assert response.status_code == 302
    [message] = outbox_messages(app)
    assert message.get_all("Bcc") is None
    assert len(message.get_all("To")) == 1


def test_post_without_csrf_token_is_refused(app, client):
    response = client.post("/signup", data=signup_form(app))
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    assert _counts(app) == (0, 0)


def test_honeypot_gets_the_same_answer_and_stores_nothing(app, client):
    response = post_signup(client, app, fax_number="+1 555 0100")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/signup/check-your-inbox")
    assert _counts(app) == (0, 0)
    assert outbox_messages(app) == []


def test_signup_creates_pending_contact_organisation_and_topics(app, client):
    response = post_signup(client, app)
    assert response.status_code == 302
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        assert contact.status is ContactStatus.PENDING
        assert contact.email == "zoe.mueller@example.org"
        assert contact.organisation.name == "Umweltbundesamt"
        assert contact.organisation.country == "DE"
        assert sorted(t.slug for t in contact.topics) == ["pipelines", "response-exercises"]
        assert [e.action.value for e in contact.consent_events] == ["signup"]
    [message] = outbox_messages(app)
    assert message["Subject"] == "Please confirm your subscription to JEG news"


def test_same_address_in_another_case_is_one_contact_and_the_answer_does_not_differ(app, client):
    first = post_signup(client, app)
    second = post_signup(client, app, email="Zoe.MUELLER@example.ORG")
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert _counts(app) == (1, 1)
    # Still pending: a second confirmation link goes out.
    assert len(outbox_messages(app)) == 2


def test_organisations_are_reused_by_normalised_name_and_country(app, client):
    post_signup(client, app)
    post_signup(client, app, email="other@example.org", organisation_name="  UMWELTBUNDESAMT ")
    post_signup(client, app, email="third@example.org", organisation_country="AT")
    assert _counts(app) == (3, 2)


def test_unknown_address_and_active_address_get_the_same_page(app, client):
    post_signup(client, app)
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        contact.status = ContactStatus.ACTIVE
        db.session.commit()
    known = post_signup(client, app)
    unknown = post_signup(client, app, email="new@example.org")
    assert known.headers["Location"] == unknown.headers["Location"]
    subjects = [str(m["Subject"]) for m in outbox_messages(app)]
    assert subjects == [
        "Please confirm your subscription to JEG news",
        "Your link to manage your JEG subscription",
        "Please confirm your subscription to JEG news",
    ]


def test_every_error_shows_at_once_topics_included(app, client):
    response = post_signup(client, app, topics=[], consent="", email="not-an-address")

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("Choose at least one topic", "Tick the box to agree", "valid email address"):
        assert message in page


def test_the_error_summary_does_not_double_punctuation(app, client):
    page = post_signup(client, app, consent="").get_data(as_text=True)

    assert "what I chose.: " not in page
    assert "what I chose: Tick the box" in page


def test_the_french_error_summary_sets_a_no_break_space_before_the_colon(app, client):
    client.get("/signup?lang=fr")  # the page's language, kept for the visit
    page = post_signup(client, app, consent="").get_data(as_text=True)
    start = page.index('id="error-summary"')
    summary = page[start : page.index("</ul>", start)]

    assert "\u00a0: Cochez" in summary
    assert " : " not in summary and ".:" not in summary


def test_changing_language_after_a_failed_submit_keeps_the_form_and_what_was_typed(app, client):
    page = post_signup(client, app, consent="", given_name="Zoë").get_data(as_text=True)
    # The language links become buttons that send the form again, to the same page.
    assert 'name="change_language" value="fr"' in page
    assert 'formaction="/signup?lang=fr"' in page

    form = signup_form(app, consent="", given_name="Zoë", change_language="fr")
    form["csrf_token"] = csrf_token(client, "/signup")
    response = client.post("/signup?lang=fr", data=form)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="fr">' in page
    assert 'value="Zoë"' in page
    assert 'role="alert"' not in page  # a change of language is not a failed submit
    assert _counts(app) == (0, 0)
    assert client.get("/signup").get_data(as_text=True).count('<html lang="fr">') == 1
