"""The profile form every page that edits a contact's own details shares (sign-up, the
preference centre, the back office's add and edit forms): shapes only, the rules live in
contacts.services."""

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import Field, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, ValidationError

from jeg_contacts.contacts.models import STAKEHOLDER_TYPE_LABELS
from jeg_contacts.contacts.services import SALUTATIONS, active_topics
from jeg_contacts.countries import country_choices, iso_codes, unece_member_codes
from jeg_contacts.i18n import LANGUAGE_NAMES
from jeg_contacts.text import single_line

SALUTATION_LABELS = {
    "ms": _l("Ms"),
    "mr": _l("Mr"),
    "mx": _l("Mx"),
    "dr": _l("Dr"),
    "prof": _l("Prof."),
}


def required() -> InputRequired:
    """InputRequired with the house message."""
    return InputRequired(message=_l("This field is required."))


def at_most(count: int) -> Length:
    """Length(max=count) with the house message."""
    return Length(max=count, message=_l("Use at most %(max)d characters."))


class CountrySelect:
    """A <select> with the UNECE member States first, then every other country, in optgroups."""

    def __call__(self, field: "CountryField", **kwargs: object) -> Markup:
        kwargs.setdefault("id", field.id)
        language = str(get_locale() or "en")
        unece = set(unece_member_codes())
        choices = country_choices(language)
        groups = {
            str(_l("UNECE member States")): [pair for pair in choices if pair[0] in unece],
            str(_l("Other countries")): [pair for pair in choices if pair[0] not in unece],
        }
        attributes = " ".join(f'{key}="{escape(value)}"' for key, value in kwargs.items())
        html = [f'<select name="{escape(field.name)}" {attributes}>']
        html.append(f'<option value="">{escape(field.placeholder)}</option>')
        for label, options in groups.items():
            html.append(f'<optgroup label="{escape(label)}">')
            for code, name in options:
                selected = " selected" if code == field.data else ""
                html.append(f'<option value="{escape(code)}"{selected}>{escape(name)}</option>')
            html.append("</optgroup>")
        html.append("</select>")
        return Markup("".join(html))


class CountryField(Field):
    widget = CountrySelect()

    def __init__(
        self,
        label: object = None,
        validators: object = None,
        placeholder: object = "",
        **kwargs: object,
    ) -> None:
        super().__init__(label, validators, **kwargs)
        self.placeholder = placeholder

    def _value(self) -> str:
        return self.data or ""

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = valuelist[0] if valuelist else None

    def pre_validate(self, form: FlaskForm) -> None:
        if self.data and self.data not in iso_codes():
            raise ValidationError(_l("Choose a country from the list."))


class TopicsField(SelectMultipleField):
    """Topic checkboxes; ids are checked against active topics by the service."""

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = []
        for value in valuelist:
            if not value.isdigit():
                raise ValueError(_l("Choose topics from the list."))
            self.data.append(int(value))

    def pre_validate(self, form: FlaskForm) -> None:
        # Checked here as well as by the service (check_topics_chosen), so that a missing
        # choice is reported with the form's other errors, not only once they are fixed.
        if not self.data:
            raise ValidationError(_l("Choose at least one topic."))
        known = {value for value, _label in self.choices}
        if any(value not in known for value in self.data):
            raise ValidationError(_l("Choose topics from the list."))


class ProfileForm(FlaskForm):
    """Fields a contact fills in at sign-up and may change later."""

    organisation_name = StringField(
        _l("Organisation name"), [required(), at_most(200), single_line]
    )
    stakeholder_type = SelectField(_l("Type of organisation"), [required()])
    organisation_country = CountryField(
        _l("Country of the organisation"), [required()], placeholder=_l("Choose a country")
    )
    organisation_website = StringField(
        _l("Organisation website (optional)"), [at_most(300), single_line]
    )
    salutation = SelectField(_l("Salutation (optional)"), default="")
    given_name = StringField(_l("Given name"), [required(), at_most(100), single_line])
    family_name = StringField(_l("Family name"), [required(), at_most(100), single_line])
    job_title = StringField(_l("Job title (optional)"), [at_most(200), single_line])
    department = StringField(_l("Department or unit (optional)"), [at_most(200), single_line])
    phone = StringField(_l("Phone (optional)"), [at_most(40), single_line])
    country = CountryField(
        _l("Your country (optional)"), placeholder=_l("Same as the organisation")
    )
    language = SelectField(_l("Language for our emails"), [required()])
    topics = TopicsField(_l("Topics"), coerce=int)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        language = str(get_locale() or "en")
        self.stakeholder_type.choices = [("", _l("Choose a type"))] + [
            (value.value, label) for value, label in STAKEHOLDER_TYPE_LABELS.items()
        ]
        self.salutation.choices = [("", "—")] + [
            (key, SALUTATION_LABELS[key]) for key in SALUTATIONS
        ]
        self.language.choices = list(LANGUAGE_NAMES.items())
        self.topic_list = active_topics()
        self.topics.choices = [(topic.id, topic.label(language)) for topic in self.topic_list]

    def topic_groups(self) -> list[tuple[str, list]]:
        """Active topics grouped for display, in order."""
        groups: dict[str, list] = {}
        for topic in self.topic_list:
            groups.setdefault(topic.group.label, []).append(topic)
        return list(groups.items())
