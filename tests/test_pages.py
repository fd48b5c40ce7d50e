"""Landing page, privacy notice, health check and error pages."""

from jeg_contacts.contacts.services import PRIVACY_NOTICE_VERSION
from jeg_contacts.countries import country_choices, unece_member_codes
from jeg_contacts.extensions import db
from tests.conftest import make_app


def test_landing_page_explains_and_links_to_signup(client):
    page = client.get("/").get_data(as_text=True)
    assert "Joint Expert Group on Water and Industrial Accidents" in page
    assert 'href="/signup"' in page
    assert "Pipeline safety" in page
    assert '<span aria-current="true" lang="en">English</span>' in page
    assert 'href="/?lang=fr"' in page
    assert 'href="/?lang=ru"' in page


def test_privacy_notice_shows_its_version(client):
    page = client.get("/privacy").get_data(as_text=True)
    assert PRIVACY_NOTICE_VERSION in page


def test_healthz_is_ok_with_the_database_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_without_the_database(tmp_path):
    broken = make_app(
        tmp_path,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'other.db'}",
        SQLALCHEMY_ENGINE_OPTIONS={},
    )
    with broken.app_context():
        db.engine.dispose()
    (tmp_path / "other.db").unlink()
    (tmp_path / "other.db").mkdir()  # a directory where the database file should be
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_favicon_is_served_with_its_type_and_kept_a_day(client):
    response = client.get("/favicon.ico")
    body = response.get_data()
    response.close()
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    assert body.startswith(b"\x00\x00\x01\x00")  # an ICO file's signature
    assert "max-age=86400" in response.headers["Cache-Control"]
    assert "public" in response.headers["Cache-Control"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_wrong_method_is_a_friendly_405(client):
    response = client.post("/privacy")
    assert response.status_code in (400, 405)
    assert "<html" in response.get_data(as_text=True)


def test_country_picker_lists_unece_member_states_first():
    choices = country_choices("en")
    unece = set(unece_member_codes())
    assert len(unece) == 56
    assert {code for code, _name in choices[:56]} == unece
    assert len(choices) == 249
    names = [name for _code, name in choices[:56]]
    assert names == sorted(names, key=str.casefold)


def test_signup_page_groups_countries(client):
    page = client.get("/signup").get_data(as_text=True)
    first_group = page.index('<optgroup label="UNECE member States">')
    assert first_group < page.index('<optgroup label="Other countries">')
    assert page.index('value="AM"') < page.index('value="AU"')  # Armenia (UNECE) before Australia
