"""The staff erasure form; the rules live in the services."""

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import InputRequired


class EraseForm(FlaskForm):
    confirm = BooleanField(
        "The contact asked for their data to be erased, and I checked that the request comes "
        "from them.",
        validators=[InputRequired("Tick the box to confirm the request.")],
    )
