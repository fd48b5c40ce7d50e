"""Announcement content: sanitised Markdown, inert placeholders, well-formed messages."""

import email
from email import policy

import pytest

from jeg_contacts.mailing.rendering import (
    LanguageVersion,
    MessageFactory,
    Recipient,
    markdown_to_html,
    personalise,
)
from tests.mailer.test_messages import (
    LONG_NAMES,
    LONG_SUBJECTS,
    assert_header_lines_within_limits,
    rfc2047_text,
)
from tests.mailing.conftest import HtmlElements


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<iframe src='https://evil.example'></iframe>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java\tscript:alert(1))",
        "<img src=x onerror=alert(1)>",
        "<a href='https://x.example' onclick='alert(1)'>x</a>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
    ],
)
def test_markdown_cannot_carry_active_content(source):
    elements = HtmlElements()
    elements.feed(markdown_to_html(source))
    assert not {"script", "iframe", "img", "object", "embed", "style"} & set(elements.tags)
    for name, value in elements.attributes:
        assert not name.startswith("on")
        if name == "href":
            assert value.startswith(("http://", "https://", "mailto:")), value


def test_markdown_keeps_ordinary_formatting_and_links():
    html = markdown_to_html("# Workshop\n\n**Kyiv**, see [the report](https://unece.org/x).")
    assert "<h1>Workshop</h1>" in html
    assert "<strong>Kyiv</strong>" in html
    assert 'href="https://unece.org/x"' in html


def test_placeholders_are_data_not_template_code():
    template = "Dear {{ given_name }} of {{organisation}}, {{ config }} {% if 1 %}x{% endif %}"
    values = {"given_name": "{{ config }}", "organisation": "<b>A&B</b>"}
    assert personalise(template, values, html=False) == (
        "Dear {{ config }} of <b>A&B</b>, {{ config }} {% if 1 %}x{% endif %}"
    )
    assert "&lt;b&gt;A&amp;B&lt;/b&gt;" in personalise(template, values, html=True)


def _message(recipient: Recipient, subject: str = "Атомные новости — réunion"):
    factory = MessageFactory.for_sender("JEG secretariat <jeg@unece.test>", "JEG <a.jeg.test>")
    version = LanguageVersion(
        language="ru",
        subject=subject,
        text="Здравствуйте, {{ given_name }}!\n@@TOPICS@@\n@@PREFERENCES_URL@@\n"
        "@@UNSUBSCRIBE_URL@@",
        html="<p>{{ given_name }} / {{ organisation }}</p><a href='@@UNSUBSCRIBE_URL@@'>x</a>",
    )
    message = factory.build(version, recipient)
    assert b"\n" not in message.raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(message.raw, policy=policy.default)
    assert parsed["Message-ID"] == message.message_id
    return parsed


def _recipient(**overrides) -> Recipient:
    values = {
        "email": "ivan@example.org",
        "given_name": "Иван",
        "family_name": "Петров",
        "organisation": "Росводресурсы <x>",
        "topics": "Безопасность трубопроводов",
        "preferences_url": "http://jeg.test/preferences/1.abc",
        "unsubscribe_url": "http://jeg.test/unsubscribe/1.abc",
    }
    values.update(overrides)
    return Recipient(**values)


def test_built_message_has_list_headers_and_both_parts():
    message = _message(_recipient())
    assert message["To"].addresses[0].display_name == "Иван Петров"
    assert message["To"].addresses[0].addr_spec == "ivan@example.org"
    assert str(message["Subject"]) == "Атомные новости — réunion"
    assert message["List-Unsubscribe"] == "<http://jeg.test/unsubscribe/1.abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "JEG <a.jeg.test>"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Здравствуйте, Иван!" in text
    assert "Безопасность трубопроводов" in text
    assert "http://jeg.test/preferences/1.abc" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Росводресурсы &lt;x&gt;" in html
    assert "href='http://jeg.test/unsubscribe/1.abc'" in html


@pytest.mark.parametrize(
    "hostile",
    ["Eve\r\nBcc: victim@example.org", "=?UTF-8?Q?=0A?=Bcc: victim@example.org", "Eve\u2028Bcc: x"],
)
def test_hostile_names_and_subjects_cannot_add_headers(hostile):
    message = _message(_recipient(given_name=hostile), subject=f"News {hostile}")
    assert message.get_all("Bcc") is None
    assert len(message.get_all("To")) == 1


# --- Line breaks and the plain-text part, through the path the delivery engine uses ------

_SIGNED = "The **workshop** is in Almaty.\n\nKind regards,\nThe secretariat"


def _delivered(app, body_en: str, recipient: Recipient) -> email.message.EmailMessage:
    """The message `recipient` gets for an announcement with `body_en`: rendered once per
    language (services.language_version), then built per recipient, as the worker does."""
    from jeg_contacts.mailing import drafts, services

    with app.test_request_context():
        announcement = drafts.save_draft(
            drafts.AnnouncementDraft(subject_en="Workshop", body_en=body_en)
        )
        version = services.language_version(announcement, "en")
    factory = MessageFactory.for_sender("JEG secretariat <jeg@unece.test>", "JEG <a.jeg.test>")
    raw = factory.build(version, recipient).raw
    return email.message_from_bytes(raw, policy=policy.default)


def test_a_single_line_break_is_kept_in_the_html_part(app):
    message = _delivered(app, _SIGNED, _recipient())
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Kind regards,<br>" in html
    assert "The secretariat" in html.split("Kind regards,<br>", 1)[1]
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Kind regards,\nThe secretariat" in text


def test_the_text_part_reads_as_plain_text_with_the_links_listed(app):
    body = (
        "Dear {{ given_name }},\n\n"
        "This is **bold** and _em_, see [the report](https://x.example/a) "
        "and [the agenda](https://x.example/b).\n\n"
        "- first item\n- second *item*\n\n"
        "1. one\n2. two\n\n"
        "Write to [us](mailto:jeg@unece.test) or <https://x.example/plain>."
    )
    message = _delivered(app, body, _recipient(given_name="**Ива́н** <b>"))
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Dear **Ива́н** <b>," in text  # a name is data, never Markdown or markup
    assert "This is bold and em, see the report [1] and the agenda [2]." in text
    assert "- first item\n- second item" in text
    assert "1. one\n2. two" in text
    assert "Write to us [3] or https://x.example/plain." in text
    before_footer = text.split("\n-- \n", 1)[0]
    # The addresses close the body, numbered; no heading, so no word to translate.
    assert before_footer.endswith(
        ".\n\n[1] https://x.example/a\n[2] https://x.example/b\n[3] mailto:jeg@unece.test\n"
    )
    for marker in ("**", "_em_", "*item*", "](", "<https"):
        assert marker not in before_footer.replace("**Ива́н**", "")
    # The footer still follows, with the recipient's own links.
    assert text.rstrip().endswith("Unsubscribe: http://jeg.test/unsubscribe/1.abc")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "**Ива́н** &lt;b&gt;" in html and "<b>" not in html


def test_the_text_part_keeps_headings_quotes_and_code_readable():
    from jeg_contacts.mailing.rendering import markdown_to_text

    text = markdown_to_text(
        "# Workshop\n\n> quoted\n> line\n\n```\nx = **1**\n```\n\n"
        "Unsafe [click](javascript:alert(1)) stays text; `a_b` is code.\n\n---\n\nEnd"
    )
    assert text.startswith("Workshop\n\n> quoted\n> line\n\n    x = **1**\n\n")
    assert "Unsafe [click](javascript:alert(1)) stays text; a_b is code." in text
    assert "\n[1]" not in text  # an address the HTML part would drop is not listed either
    assert text.endswith("* * *\n\nEnd")


def test_the_text_part_keeps_nested_and_loose_lists_in_shape():
    from jeg_contacts.mailing.rendering import markdown_to_text

    text = markdown_to_text("- a\n  - b\n- c\n\n3. x\n4. y\n\n- loose\n\n- two\n\n> - q\n>\n> p")
    assert text == "- a\n  - b\n- c\n\n3. x\n4. y\n\n- loose\n\n- two\n\n> - q\n>\n> p"


def test_placeholders_survive_the_text_rendering():
    from jeg_contacts.mailing.rendering import markdown_to_text

    text = markdown_to_text("Dear {{ given_name }} of {{organisation}},\nhello")
    assert text == "Dear {{ given_name }} of {{organisation}},\nhello"


@pytest.mark.parametrize("subject", LONG_SUBJECTS)
@pytest.mark.parametrize(("given", "family"), LONG_NAMES)
def test_announcement_headers_stay_within_the_line_and_encoded_word_limits(
    subject: str, given: str, family: str
) -> None:
    unsubscribe = "https://contacts.jeg.example.org/unsubscribe/12345.Ab3dEf6hIj9kLm2nOp5qRs"
    factory = MessageFactory.for_sender("JEG secretariat <jeg@unece.test>", "JEG <a.jeg.test>")
    version = LanguageVersion(language="ru", subject=subject, text="Текст", html="<p>Текст</p>")
    recipient = _recipient(given_name=given, family_name=family, unsubscribe_url=unsubscribe)
    raw = factory.build(version, recipient).raw

    message = assert_header_lines_within_limits(raw)
    assert rfc2047_text(raw, "Subject") == subject
    assert rfc2047_text(raw, "To") == f"{given} {family} <ivan@example.org>"
    # A link cannot be folded: a long one starts its own line (the value keeps that space).
    assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"
