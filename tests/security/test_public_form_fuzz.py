"""Hostile input in every public form field and link token: never a 5xx, never half-written.

A few hundred strings, made deterministically: control characters, CR/LF, NUL, bidi marks,
emoji, SQL and script fragments, format strings, very long values, and invalid UTF-8 sent
as raw percent-encoded bytes. Each answer is a 4xx page, a normal page or a redirect; after a
refused sign-up or preference change nothing new is stored."""

import random
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.extensions import db
from tests.conftest import csrf_token, make_app, signup_form
from tests.security.selfservice import set_status, stored, token_of

SIGNUP_FIELDS = (
    "organisation_name",
    "stakeholder_type",
    "organisation_country",
    "organisation_website",
    "salutation",
    "given_name",
    "family_name",
    "job_title",
    "email",
    "phone",
    "country",
    "language",
    "topics",
    "consent",
    "fax_number",
)
PROFILE_FIELDS = tuple(
    name for name in SIGNUP_FIELDS if name not in ("email", "consent", "fax_number")
)
TEXT_FIELDS = ("organisation_name", "given_name", "family_name", "job_title", "phone")

_SEEDS = [
    "",
    " ",
    "\t",
    "\u00a0",
    "\u3000",
    "\x00",
    "Ana\x00Silva",
    "Ana\r\nBcc: victim@example.org",
    "zoe@example.org\r\nBcc: victim@example.org",
    "zoe@example.org\nX-Injected: 1",
    "\r",
    "\n\n\n",
    "Ana\u2028Silva",
    "Ana\u2029Silva",
    "Ana\x85Silva",
    "\x1b[31mred\x1b[0m",
    "\x7f\x08\x07",
    "\u202eevil\u202c",
    "\u202dLTR\u202c \u2066isolate\u2069",
    "\u200f\u200e\u061c",
    "\u200b\u200c\u200d\ufeff",
    "\ufffd\ufffe\uffff",
    "👩\u200d🔬 Zoë",
    "🏳️\u200d🌈🇺🇳🇫🇷",
    "😀" * 50,
    "Z̸̢̛a̵l̷g̶o̸ t̴e̷x̵t̸",
    "".join(chr(ord(ch) + 0xFEE0) for ch in "zoe@example.org"),  # full-width forms
    "\uff11\uff12\uff13",
    "١٢٣",
    "İstanbul ß ﬁ ǅ",
    "Владимир Ильич",
    "王秀英",
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE contacts; --",
    '" OR ""="',
    "1; SELECT * FROM users",
    "%' UNION SELECT email_key, link_secret FROM contacts --",
    "admin'--",
    "\\'; --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    'https://evil.example/"onmouseover="alert(1)',
    "<svg/onload=alert(1)>",
    "{{ 7*7 }}",
    "{% for x in () %}{% endfor %}",
    "${7*7}",
    "%(name)s %s %d %n",
    "{0} {name!r}",
    '=HYPERLINK("http://evil.example")',
    "@SUM(1+1)",
    "../../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%00",
    "%0d%0aSet-Cookie: x=1",
    "/\\evil.example",
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "0x10",
    "1.5",
    "1 2",
    "a@b",
    "@",
    "a@@b.org",
    '"quoted"@example.org',
    "zoe+tag@example.org",
    "Ünïcödé@exämple.org",
    "zoe@[127.0.0.1]",
    "zoe@localhost",
    " zoe.mueller@example.org ",
    "zoe@example.org, mallory@example.org",
    "zoe@example.org;mallory@example.org",
    "Mallory <mallory@example.org>",
    "a" * 64 + "@" + "b" * 63 + ".org",
    "x" * 255 + "@example.org",
    "A" * 10_000,
    "é" * 5_000,
    "\U0001f600" * 3_000,
    "1." + "9" * 190,
    "9" * 30 + ".1." + "A" * 32,
    "1.1.1.1.1.1",
    "..",
    ".",
]

# Pieces the generator mixes: printable text and the troublesome code points above.
_PIECES = [
    "Ana",
    "Müller",
    "O'Brien",
    "<",
    ">",
    "&",
    '"',
    "'",
    ";",
    "--",
    "\r\n",
    "\x00",
    "\x0b",
    "\u202e",
    "\u2028",
    "\ufeff",
    "😀",
    "🇫🇷",
    "\u0301",
    "%",
    "%s",
    "{{",
    "}}",
    "@",
    "+",
    ".",
    "/",
    "\\",
    " ",
    "\t",
]


def hostile_strings(count: int = 300) -> list[str]:
    """The seeds, then generated mixes of the pieces, always the same for the same count."""
    generator = random.Random(20261203)
    strings = list(_SEEDS)
    while len(strings) < count:
        length = generator.randint(1, 12)
        text = "".join(generator.choice(_PIECES) for _ in range(length))
        if generator.random() < 0.2:
            text *= generator.randint(20, 80)
        strings.append(text)
    return strings


# Bodies a browser would never send: bytes that are not UTF-8, percent-encoded or raw.
INVALID_UTF8 = [
    b"%FF",
    b"%C0%AF",
    b"%ED%A0%80",
    b"%F8%88%80%80%80",
    b"%E2%82",
    b"Ana%FESilva",
    b"%00%FF%0D%0A",
    b"\xff\xfe",
    b"\xc3\x28",
]


def _counts(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            for table in ("contacts", "organisations", "consent_events", "signup_requests")
        )


def _check(response, what: str) -> None:
    assert response.status_code < 500, what
    # 308: Werkzeug's redirect to the path without a doubled slash (an empty token).
    assert response.status_code in (200, 302, 308, 400, 404, 405, 413, 429), (what, response.status)
    if response.status_code in (200, 400) and response.mimetype == "text/html":
        assert "</html>" in response.get_data(as_text=True), what


@pytest.fixture
def fuzz_app(tmp_path):
    # Many requests from one client: lift the per-client limit, keep the per-address one.
    return make_app(tmp_path, SIGNUP_RATE_LIMIT=1_000_000)


def _post(client, path: str, form: dict) -> object:
    return client.post(path, data=form)


def test_signup_survives_hostile_input_in_every_field(fuzz_app):
    app = fuzz_app
    client = app.test_client()
    token = csrf_token(client, "/signup")
    valid = signup_form(app)
    for index, hostile in enumerate(hostile_strings()):
        # The string in one field, the others valid (each field gets every 15th string);
        # the hand-picked ones also in every field at once.
        field = SIGNUP_FIELDS[index % len(SIGNUP_FIELDS)]
        one = {**valid, "email": f"fuzz{index}@example.org", field: hostile, "csrf_token": token}
        every = {name: hostile for name in SIGNUP_FIELDS} | {"csrf_token": token}
        for form in (one, every) if index < len(_SEEDS) else (one,):
            before = _counts(app)
            response = _post(client, "/signup", form)
            _check(response, f"{field}={hostile[:40]!r}")
            if response.status_code != 302:
                assert _counts(app) == before, f"{field}={hostile[:40]!r}"
            elif form is one and field not in ("email", "fax_number"):
                _assert_whole(app, one["email"])


def _assert_whole(app, email: str) -> None:
    """An accepted sign-up stored a whole contact: organisation, topics, consent."""
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email_key == email))
        assert contact is not None, email
        assert contact.organisation is not None
        assert contact.topics
        assert [event.action.value for event in contact.consent_events] == ["signup"]


def _raw_form(fields: dict[str, object], raw: bytes, hostile_fields: tuple[str, ...]) -> bytes:
    """A form body with `raw` as the value of `hostile_fields`, the others percent-encoded."""
    parts = [f"{name}=".encode() + raw for name in hostile_fields]
    parts += [
        f"{name}={quote(str(item))}".encode()
        for name, value in fields.items()
        if name not in hostile_fields
        for item in (value if isinstance(value, list) else [value])
    ]
    return b"&".join(parts)


def test_signup_survives_bytes_that_are_not_utf8(fuzz_app):
    app = fuzz_app
    client = app.test_client()
    token = csrf_token(client, "/signup")
    attempts = [(raw, SIGNUP_FIELDS) for raw in INVALID_UTF8]
    attempts += [
        (INVALID_UTF8[index % len(INVALID_UTF8)], (field,))
        for index, field in enumerate(SIGNUP_FIELDS)
    ]
    for index, (raw, fields) in enumerate(attempts):
        email = f"bytes{index}@example.org"
        valid = {**signup_form(app), "email": email, "csrf_token": token}
        before = _counts(app)
        response = client.post(
            "/signup",
            data=_raw_form(valid, raw, fields),
            content_type="application/x-www-form-urlencoded",
        )
        _check(response, f"{fields}={raw!r}")
        if response.status_code != 302:
            assert _counts(app) == before, f"{fields}={raw!r}"
        elif "email" not in fields and "fax_number" not in fields:
            # Accepted: the undecodable bytes became U+FFFD, stored whole.
            _assert_whole(app, email)


def test_new_link_survives_hostile_addresses(fuzz_app):
    app = fuzz_app
    client = app.test_client()
    token = csrf_token(client, "/new-link")
    before = _counts(app)
    for hostile in hostile_strings():
        response = _post(client, "/new-link", {"csrf_token": token, "email": hostile})
        _check(response, repr(hostile[:40]))
    for raw in INVALID_UTF8:
        response = client.post(
            "/new-link",
            data=b"csrf_token=" + token.encode() + b"&email=" + raw,
            content_type="application/x-www-form-urlencoded",
        )
        _check(response, repr(raw))
    assert _counts(app) == before


def test_preferences_survive_hostile_input_and_refusals_change_nothing(fuzz_app):
    app = fuzz_app
    owner = "zoe.mueller@example.org"
    client = app.test_client()
    client.post("/signup", data={**signup_form(app), "csrf_token": csrf_token(client, "/signup")})
    set_status(app, owner, ContactStatus.ACTIVE)
    token = token_of(app, owner)
    path = f"/preferences/{token}"
    csrf = csrf_token(client, path)
    valid = {name: value for name, value in signup_form(app).items() if name in PROFILE_FIELDS} | {
        "csrf_token": csrf
    }
    with app.app_context():
        person = db.session.scalar(sa.select(Contact.id))
    # The preference form has the sign-up's profile fields and rules: every other string.
    for index, hostile in enumerate(hostile_strings()[::2]):
        field = PROFILE_FIELDS[index % len(PROFILE_FIELDS)]
        one = {**valid, field: hostile}
        every = {name: hostile for name in PROFILE_FIELDS} | {"csrf_token": csrf}
        for form in (one, every) if index < len(_SEEDS) // 2 else (one,):
            before = _fingerprint(app, person)
            response = _post(client, path, form)
            _check(response, f"{field}={hostile[:40]!r}")
            if response.status_code != 302:
                assert _fingerprint(app, person) == before, f"{field}={hostile[:40]!r}"
    assert stored(app, person)["status"] is ContactStatus.ACTIVE


def _fingerprint(app, person: int) -> tuple:
    """Cheap stand-in for everything stored about a contact: any UPDATE bumps `version`."""
    with app.app_context():
        version = db.session.scalar(sa.select(Contact.version).where(Contact.id == person))
        topics = sorted(
            db.session.scalars(
                sa.text("SELECT topic_id FROM subscriptions WHERE contact_id = :id"),
                {"id": person},
            )
        )
    return version, topics, _counts(app)


def test_hostile_link_tokens_are_refused_cleanly(fuzz_app):
    app = fuzz_app
    client = app.test_client()
    client.post("/signup", data={**signup_form(app), "csrf_token": csrf_token(client, "/signup")})
    csrf = csrf_token(client, "/new-link")
    before = _counts(app)
    with app.app_context():
        person = db.session.scalar(sa.select(Contact.id))
    snapshot = stored(app, person)
    routes = [
        ("GET", "/confirm/{}"),
        ("POST", "/confirm/{}"),
        ("POST", "/confirm/{}/resend"),
        ("GET", "/preferences/{}"),
        ("POST", "/preferences/{}"),
        ("GET", "/preferences/{}/erase"),
        ("POST", "/preferences/{}/erase"),
        ("POST", "/preferences/{}/my-data"),
        ("POST", "/preferences/{}/revoke-links"),
        ("GET", "/unsubscribe/{}"),
        ("POST", "/unsubscribe/{}"),
    ]
    tokens = [quote(text, safe="") for text in hostile_strings()]
    tokens += [raw.decode("latin-1") for raw in INVALID_UTF8 if raw.startswith(b"%")]
    for index, token in enumerate(tokens):
        # Each token on two routes in turn (every route gets some fifty); the first seeds,
        # the control characters and line breaks, on every route.
        chosen = routes if index < 20 else [routes[(2 * index + k) % len(routes)] for k in (0, 1)]
        for method, route in chosen:
            url = route.format(token)
            response = client.open(url, method=method, data={"csrf_token": csrf})
            _check(response, f"{method} {url[:60]}")
    assert _counts(app) == before
    assert stored(app, person) == snapshot
