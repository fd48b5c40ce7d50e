"""Shapes of the directory's forms; the rules live in directory.services, directory.bulk and
contacts.services."""

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import HiddenInput

from jeg_contacts.contacts.forms import ProfileForm
from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.contacts.services import BASIS_MAX_CHARS
from jeg_contacts.directory.bulk import BulkAction
from jeg_contacts.directory.services import NEW_CONTACT_STATUSES, STAFF_STATUSES
from jeg_contacts.text import single_line

STATUS_LABELS = {
    ContactStatus.PENDING: "Pending: waits for the contact to confirm by email",
    ContactStatus.ACTIVE: "Active: receives what they chose",
    ContactStatus.UNSUBSCRIBED: "Unsubscribed: receives nothing",
    ContactStatus.BOUNCED: "Bounced: the address does not accept mail",
}


class ContactForm(ProfileForm):
    """The sign-up fields, worded for the secretariat, plus address and status."""

    email = EmailField(
        "Email address",
        [
            InputRequired(message="This field is required."),
            Length(max=254, message="Use at most 254 characters."),
            single_line,
        ],
    )
    status = RadioField("Status", validate_choice=False)
    # The contact's version when the form was opened: a save over a newer version is refused.
    version = IntegerField(widget=HiddenInput(), validators=[Optional()])

    def __init__(
        self, *args: object, statuses: tuple[ContactStatus, ...], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self.status.choices = [
            SelectChoice(status.value, STATUS_LABELS[status]) for status in statuses
        ]
        self.organisation_name.label.text = "Organisation name"
        self.stakeholder_type.label.text = "Type of organisation"
        self.country.label.text = "Country of the person (optional)"
        self.language.label.text = "Language of emails"
        self.topics.label.text = "Topics"


class NewContactForm(ContactForm):
    """The add form: pending unless staff choose active and say why the person agreed."""

    # Checked by the service with the shared rule (contacts.services.consent_basis).
    basis = TextAreaField(
        "Why this person agreed to be contacted (to add them as active)",
        render_kw={"rows": 2, "maxlength": BASIS_MAX_CHARS},
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, statuses=NEW_CONTACT_STATUSES, **kwargs)
        self.status.choices = [
            SelectChoice(
                ContactStatus.PENDING.value,
                "Pending: they are emailed the usual confirmation link and receive nothing "
                "until they confirm",
            ),
            SelectChoice(
                ContactStatus.ACTIVE.value,
                "Active, because they agreed to be contacted: they receive what they chose "
                "from now on, without a confirmation email",
            ),
        ]


class StatusForm(FlaskForm):
    status = SelectField(
        "New status",
        choices=[
            SelectChoice(status.value, status.value.capitalize()) for status in STAFF_STATUSES
        ],
    )
    version = IntegerField(widget=HiddenInput(), validators=[Optional()])


class BulkForm(FlaskForm):
    """What to do to the selected contacts; the service checks the topic and status."""

    action = RadioField(
        "Action", choices=[SelectChoice(action.value, action.label) for action in BulkAction]
    )
    topic_id = SelectField("Topic", validate_choice=False)
    # Not "status": that argument already filters the selection.
    new_status = SelectField(
        "New status",
        choices=[
            SelectChoice("", "Choose a status"),
            *(SelectChoice(status.value, status.value.capitalize()) for status in STAFF_STATUSES),
        ],
        validate_choice=False,
    )
    confirmed_count = IntegerField(widget=HiddenInput(), validators=[Optional()])

    def __init__(self, *args: object, topics: list, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.topic_id.choices = [
            SelectChoice("", "Choose a topic"),
            *(
                SelectChoice(
                    str(topic.id), topic.label_en + ("" if topic.active else " (archived)")
                )
                for topic in topics
            ),
        ]

    @property
    def chosen_topic_id(self) -> int | None:
        return int(self.topic_id.data) if (self.topic_id.data or "").isdigit() else None
