"""Shapes of the public forms; the business rules live in signup.services."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, StringField
from wtforms.validators import InputRequired

from jeg_contacts.contacts.forms import ProfileForm, at_most, required
from jeg_contacts.text import email_address, single_line


class SignupForm(ProfileForm):
    email = EmailField(_l("Email address"), [required(), at_most(254), single_line, email_address])
    consent = BooleanField(
        _l("I agree that the secretariat keeps these details to send me what I chose."),
        [InputRequired(message=_l("Tick the box to agree, or we cannot send you news."))],
    )
    # Honeypot: hidden from people and assistive technology, filled in by naive bots.
    fax_number = StringField(_l("Leave this field empty"))


class EmailForm(FlaskForm):
    email = EmailField(_l("Email address"), [required(), at_most(254), single_line, email_address])
