"""EmailNormaliser, the import's normalise_email, against normalise_email and email-validator."""

from itertools import product
from pathlib import Path

import email_validator
import email_validator.deliverability
import pytest
from email_validator import EmailNotValidError, EmailUndeliverableError, validate_email
from email_validator.syntax import validate_email_domain_name
from flask import Flask

from jeg_contacts import text
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.text import EmailNormaliser, normalise_email
from tests.conftest import make_app

LOCAL_PARTS = [
    "ana",
    "Ana.Silva",
    "ANA",
    "a",
    "a+tag",
    "first.middle.last",
    "o'brien",
    "#!$%&'*+-/=?^_`{|}~",
    "a..b",
    ".ana",
    "ana.",
    "",
    "postmaster",
    "PostMaster",
    "ABUSE",
    "ana silva",
    "ana\\silva",
    "a(b)",
    "a,b",
    "a;b",
    "a[b]",
    "a>b",
    "ana@home",
    '"ana"',
    '"ana silva"',
    '"a\\"b"',
    '"a@b"',
    '"ñ"',
    "ñandú",
    "Ünal",
    "a\u0301",
    "测试",
    "ana\u200b",
    "ana\u00ad",
    "a" * 64,
    "a" * 65,
    "a" * 120,
]

DOMAINS = [
    "example.org",
    "EXAMPLE.ORG",
    "Example.Org",
    "example.org.",
    ".example.org",
    "example..org",
    "-example.org",
    "example-.org",
    "exa_mple.org",
    "ex ample.org",
    "sub.domain.co.uk",
    "123.org",
    "example.123",
    "ab--cd.org",
    "xn--bcher-kva.example",
    "XN--BCHER-KVA.example",
    "xn--aa.org",
    "bücher.example",
    "BÜCHER.example",
    "münchen.de",
    "例え.jp",
    "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.org",  # full-width letters
    "example。org",
    "ⅷ.org",
    "example.org\u200b",
    "exa\u00admple.org",
    "אב.1.com",
    "1.xn--4dbc.com",
    "localhost",
    "test",
    "a.test",
    "example.test",
    "example.invalid",
    "example.local",
    "example.onion",
    "example",
    "[127.0.0.1]",
    "[IPv6:::1]",
    "[not an address]",
    "",
    "a" * 63 + ".org",
    "a" * 64 + ".org",
    ".".join(["abcdefghij" * 6] * 4) + ".org",
    ".".join(["abcdefghij" * 2] * 12),
    "example.org>",
    "example.org@other.org",
]

WHOLE_ADDRESSES = [
    "Ana Silva <ana@example.org>",
    "<ana@example.org>",
    '"Ana" <ana@example.org>',
    "ana@example.org (Ana)",
    "ana@@example.org",
    "ana\uff20example.org",  # full-width at-sign
    "ana﹫example.org",
    "@example.org",
    "ana@",
    "ana",
    "@",
    "ana@example.org@",
    "  ana@example.org  ",
    "ana@example.org\n",
    "ana\t@example.org",
    "ana\x00@example.org",
    "ana@exam\u2028ple.org",
    "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "org",
    "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "b" * 8 + ".org",
    "a" * 64 + "@" + ("ü" * 55 + ".") * 3 + "org",
]

ADDRESSES = [f"{local}@{domain}" for local, domain in product(LOCAL_PARTS, DOMAINS)] + [
    *WHOLE_ADDRESSES,
    *(address.upper() for address in WHOLE_ADDRESSES),
]


def _library_outcome(candidate: str) -> tuple[str, str | None]:
    try:
        return (
            "valid",
            validate_email(candidate, allow_smtputf8=False, check_deliverability=False).ascii_email,
        )
    except EmailNotValidError as error:
        return (type(error).__name__, str(error))


def _outcome(check, raw: str) -> tuple[str, str | None]:
    try:
        return ("valid", check(raw))
    except EmailNotValidError as error:
        return (type(error).__name__, str(error))
    except ValidationFailed as error:
        return (error.field, error.message)


@pytest.mark.parametrize("test_environment", [True, False])
def test_email_normaliser_matches_email_validator_address_for_address(
    app: Flask, monkeypatch: pytest.MonkeyPatch, test_environment: bool
) -> None:
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", test_environment)
    with app.test_request_context():
        normaliser = EmailNormaliser()
        # Twice through one normaliser: the second round is answered from its domain cache.
        for _round in range(2):
            for address in ADDRESSES:
                candidate = address.strip()
                assert _outcome(normaliser.ascii_email, candidate) == _library_outcome(candidate), (
                    address
                )
                assert _outcome(normaliser, address) == _outcome(normalise_email, address), address
        outcomes = [_library_outcome(address.strip()) for address in ADDRESSES]
    valid = sum(kind == "valid" for kind, _detail in outcomes)
    # The mix holds plenty of both, refused for many different reasons.
    assert valid > 200
    assert len(outcomes) - valid > 500
    assert len({detail for kind, detail in outcomes if kind != "valid"}) > 30


def test_email_normaliser_checks_each_domain_once(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []

    def counting(domain: str, **options: bool) -> dict[str, str]:
        checked.append(domain)
        return validate_email_domain_name(domain, **options)

    monkeypatch.setattr(text, "validate_email_domain_name", counting)
    with app.test_request_context():
        normaliser = EmailNormaliser()
        for number in range(100):
            assert normaliser(f"person{number}@Example.org") == f"person{number}@example.org"
            assert normaliser(f"P{number}@Bücher.example") == f"P{number}@xn--bcher-kva.example"
            with pytest.raises(ValidationFailed):
                normaliser(f"person{number}@example..org")
    assert checked == ["Example.org", "Bücher.example", "example..org"]


def test_email_normaliser_looks_each_domain_up_once_when_deliverability_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, EMAIL_CHECK_DELIVERABILITY=True)
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", False)
    looked_up: list[str] = []

    def fake_lookup(ascii_domain: str, domain: str, timeout=None, dns_resolver=None) -> dict:
        looked_up.append(ascii_domain)
        if ascii_domain.startswith("nowhere"):
            raise EmailUndeliverableError(f"The domain name {domain} does not exist.")
        return {"mx": [(10, f"mail.{ascii_domain}")], "mx_fallback_type": None}

    monkeypatch.setattr(
        email_validator.deliverability, "validate_email_deliverability", fake_lookup
    )
    addresses = [
        f"{name}@{domain}"
        for name in ("ana", "ben", "postmaster", "ünal", "a..b")
        for domain in ("example.org", "nowhere.example.org", "bücher.example.org")
    ]
    with app.test_request_context():
        expected = [_outcome(normalise_email, address) for address in addresses]
        looked_up.clear()
        normaliser = EmailNormaliser()
        assert [_outcome(normaliser, address) for address in addresses] == expected
    assert sorted(looked_up) == [
        "example.org",
        "nowhere.example.org",
        "xn--bcher-kva.example.org",
    ]
    assert ("email", "Enter a valid email address, like name@example.org.") in expected
    assert ("valid", "ana@xn--bcher-kva.example.org") in expected
