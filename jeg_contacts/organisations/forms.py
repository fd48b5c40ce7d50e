"""Shapes of the organisation forms; the rules live in organisations.services."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectChoice, SelectField, StringField, URLField
from wtforms.validators import InputRequired, Length

from jeg_contacts.contacts.models import STAKEHOLDER_TYPE_LABELS
from jeg_contacts.countries import country_choices, unece_member_codes


class OrganisationForm(FlaskForm):
    name = StringField("Name", [InputRequired("Enter the organisation's name."), Length(max=200)])
    stakeholder_type = SelectField("Type of organisation", [InputRequired("Choose a type.")])
    country = SelectField("Country", default="")
    website = URLField("Website", [Length(max=300)])
    # The saved version the form was opened on, to refuse overwriting someone else's edit.
    loaded_token = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.stakeholder_type.choices = [
            SelectChoice(value.value, str(label))
            for value, label in STAKEHOLDER_TYPE_LABELS.items()
        ]
        unece = set(unece_member_codes())
        self.country.choices = [
            SelectChoice("", "No country"),
            *(
                SelectChoice(code, name, optgroup="UNECE member States")
                for code, name in country_choices("en")
                if code in unece
            ),
            *(
                SelectChoice(code, name, optgroup="Other countries")
                for code, name in country_choices("en")
                if code not in unece
            ),
        ]
