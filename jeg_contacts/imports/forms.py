"""Shapes of the import forms; the rules live in the services."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    TextAreaField,
)
from wtforms.validators import InputRequired
from wtforms.widgets import HiddenInput

from jeg_contacts.contacts.models import StakeholderType, Topic
from jeg_contacts.contacts.services import BASIS_MAX_CHARS
from jeg_contacts.i18n import LANGUAGE_NAMES
from jeg_contacts.imports.reading import DELIMITERS, ENCODINGS
from jeg_contacts.imports.services import Outcome

ENCODING_CHOICES = [SelectChoice(key, label) for key, label in ENCODINGS.items()]
DELIMITER_CHOICES = [SelectChoice(key, label) for key, label in DELIMITERS.items()]


class ReadingForm(FlaskForm):
    """How to read a CSV file; detected unless chosen."""

    encoding = SelectField("Encoding (CSV only)", choices=ENCODING_CHOICES, default="auto")
    delimiter = SelectField("Delimiter (CSV only)", choices=DELIMITER_CHOICES, default="auto")


class UploadForm(ReadingForm):
    file = FileField(
        "CSV or Excel (.xlsx) file", validators=[FileRequired("Choose a file to import.")]
    )


class ImportSettingsForm(ReadingForm):
    """What to do with the rows; the column mapping arrives as column-0, column-1, ..."""

    status = RadioField(
        "New contacts are imported as",
        choices=[
            SelectChoice(
                "pending",
                "Pending: each is emailed a confirmation link and receives nothing until "
                "they confirm",
            ),
            SelectChoice(
                "active",
                "Active, because they agreed to be contacted: they receive what the file says "
                "from now on, without a confirmation email",
            ),
        ],
        default="pending",
    )
    # Checked by the view with the import's own rule (imports.import_basis).
    basis = TextAreaField(
        "Why the people on this list agreed to be contacted (for an active import)",
        render_kw={"rows": 2, "maxlength": BASIS_MAX_CHARS},
    )
    existing = RadioField(
        "Contacts already in the directory (same email address)",
        choices=[
            SelectChoice("skip", "Skip them: leave them exactly as they are"),
            SelectChoice(
                "update",
                "Update them with the file's values (empty cells leave a value as it is; "
                "their status is not changed)",
            ),
        ],
        default="skip",
    )
    default_type = SelectField("Type of organisation for rows without one", default="")
    default_language = SelectField(
        "Language of emails for rows without one",
        choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()],
        default="en",
    )
    default_topics = SelectMultipleField("Topics for rows without any", default=[])

    def __init__(self, *args: object, topics: list[Topic], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.default_type.choices = [
            SelectChoice("", "None: rows without a type are rejected"),
            *(SelectChoice(member.value, member.label) for member in StakeholderType),
        ]
        self.default_topics.choices = [
            SelectChoice(str(topic.id), topic.label_en) for topic in topics if topic.active
        ]


def _count() -> IntegerField:
    return IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class CommitForm(FlaskForm):
    """The dry run's numbers, which the import must find again to go ahead."""

    create = _count()
    update = _count()
    unchanged = _count()
    skip = _count()
    reject = _count()
    pending = _count()

    def expected(self) -> dict[str, int]:
        return {name: self[name].data for name in (*(o.value for o in Outcome), "pending")}
