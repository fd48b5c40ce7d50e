"""Shapes of the announcement forms; the rules live in mailing.drafts and mailing.services."""

from datetime import UTC

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import HiddenInput

from jeg_contacts.mailing.drafts import LANGUAGE_LABELS, MAX_BODY_LENGTH
from jeg_contacts.mailing.models import AnnouncementKind
from jeg_contacts.text import single_line

KIND_LABELS = {
    AnnouncementKind.ACTIVITY: "Activity: a meeting, workshop, exercise or project",
    AnnouncementKind.GUIDANCE: "New guidance: a publication, guideline or checklist",
    AnnouncementKind.GENERAL: "General news",
}
SUBJECT_MAX = 200


def _strip(value: str | None) -> str | None:
    return value.strip() if value else value


def _subject(label: str, required: bool = False) -> StringField:
    validators = [
        DataRequired(message="Write a subject.") if required else Optional(),
        Length(max=SUBJECT_MAX, message=f"Use at most {SUBJECT_MAX} characters."),
        single_line,
    ]
    return StringField(label, validators, filters=[_strip])


def _body(label: str, required: bool = False) -> TextAreaField:
    validators = [
        InputRequired(message="Write the text.") if required else Optional(),
        Length(max=MAX_BODY_LENGTH, message=f"Use at most {MAX_BODY_LENGTH:,} characters."),
    ]
    return TextAreaField(label, validators)


class AnnouncementForm(FlaskForm):
    """Texts, kind and the choice of a saved audience; the audience filters are read by
    ContactFilter.from_args, as in the directory."""

    kind = RadioField(
        "Kind",
        choices=[SelectChoice(kind.value, label) for kind, label in KIND_LABELS.items()],
        default=AnnouncementKind.GENERAL.value,
    )
    subject_en = _subject("Subject", required=True)
    body_en = _body("Text", required=True)
    subject_fr = _subject("Subject in French")
    body_fr = _body("Text in French")
    subject_ru = _subject("Subject in Russian")
    body_ru = _body("Text in Russian")
    saved_audience = SelectField("Saved audience", validate_choice=False)
    audience_name = StringField(
        "Name for this audience",
        [
            Optional(),
            Length(max=120, message="Use at most 120 characters."),
            single_line,
        ],
    )
    # When the announcement was loaded into the form: a save over a newer version is refused.
    loaded_at = HiddenField()
    preview_language = SelectField(
        "Preview in",
        choices=[SelectChoice(code, name) for code, name in LANGUAGE_LABELS.items()],
        default="en",
    )

    def __init__(self, *args: object, audiences: list, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.saved_audience.choices = [
            SelectChoice("", "None: use the filters below"),
            *(SelectChoice(str(audience.id), audience.name) for audience in audiences),
        ]

    @property
    def saved_audience_id(self) -> int | None:
        value = self.saved_audience.data or ""
        return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


class SendTestForm(FlaskForm):
    email = EmailField(
        "Send a test to",
        [
            InputRequired(message="Enter the address to send the test to."),
            Length(max=254, message="Use at most 254 characters."),
            single_line,
        ],
    )
    language = SelectField(
        "Language",
        choices=[SelectChoice(code, name) for code, name in LANGUAGE_LABELS.items()],
        default="en",
    )


class SendForm(FlaskForm):
    """Send now, or at a time (UTC); the count the person confirmed rides along."""

    when = RadioField("When", choices=[SelectChoice("now", "Now"), SelectChoice("later", "Later")])
    send_at = DateTimeLocalField(
        "Date and time (UTC)",
        validators=[Optional()],
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        tz=UTC,
    )
    confirmed_count = IntegerField(widget=HiddenInput(), validators=[Optional()])


class ConfirmForm(FlaskForm):
    """A button that changes something; only the CSRF token is checked."""


class PublishForm(FlaskForm):
    published = RadioField(
        "Public archive",
        choices=[SelectChoice("1", "Published"), SelectChoice("0", "Not published")],
    )
