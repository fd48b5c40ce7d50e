"""Every back-office endpoint needs a login, and write endpoints need more than a viewer."""

import re

import pytest
from flask import Flask

from jeg_contacts.auth.access import required_role
from jeg_contacts.auth.models import Role
from tests.conftest import csrf_token

PUBLIC_ADMIN_ENDPOINTS = {"auth.login", "auth.logout"}


def _admin_rules(app: Flask):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.endpoint not in PUBLIC_ADMIN_ENDPOINTS:
            yield rule


def _url(rule) -> str:
    # Any integer works for ids: access is decided before the record is looked up.
    return re.sub(r"<(?:int:)?(\w+)>", "1", rule.rule)


def test_there_are_admin_endpoints_to_check(app):
    assert len(list(_admin_rules(app))) >= 10


def test_every_admin_endpoint_redirects_anonymous_users_to_login(app, client):
    for rule in _admin_rules(app):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_url(rule), method=method)
            assert response.status_code == 302, f"{method} {rule.rule}"
            assert response.headers["Location"].startswith("/admin/login"), rule.rule


def _write_rules(app: Flask):
    with app.test_request_context():
        for rule in _admin_rules(app):
            role = required_role(rule.endpoint)
            if "POST" in rule.methods or role is not Role.VIEWER:
                yield rule, role


def test_write_endpoints_declare_more_than_viewer(app):
    with app.test_request_context():
        undeclared = [
            rule.rule
            for rule in _admin_rules(app)
            if "POST" in rule.methods
            and required_role(rule.endpoint) is Role.VIEWER
            and rule.endpoint != "auth.change_password"  # every staff member owns a password
        ]
    assert undeclared == []


def test_viewer_gets_403_on_every_write_endpoint(app, viewer_client):
    token = csrf_token(viewer_client, "/admin/account/password")
    checked = 0
    for rule, _role in _write_rules(app):
        if rule.endpoint == "auth.change_password":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method == "POST" else None
            response = viewer_client.open(_url(rule), method=method, data=data)
            assert response.status_code == 403, f"{method} {rule.rule}"
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_viewer_pages_open_for_every_role(app, role, request):
    client = request.getfixturevalue(f"{role}_client")
    for url in ("/admin", "/admin/contacts", "/admin/organisations", "/admin/audit"):
        assert client.get(url).status_code == 200, url
