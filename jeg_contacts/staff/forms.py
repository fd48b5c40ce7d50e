"""Login, password and account forms."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField
from wtforms.validators import EqualTo, InputRequired, Length

from jeg_contacts.auth.models import Role

ROLE_CHOICES = {
    Role.VIEWER.value: "Viewer: reads and exports",
    Role.EDITOR.value: "Editor: also edits contacts and sends announcements",
    Role.ADMIN.value: "Administrator: also manages staff accounts and topics",
}


class LoginForm(FlaskForm):
    email = EmailField("Email", [InputRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", [InputRequired("Enter your password."), Length(max=1024)])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", [InputRequired("Enter it.")])
    password = PasswordField(
        "New password", [InputRequired("Choose a new password."), Length(max=1024)]
    )
    confirm = PasswordField(
        "New password again", [EqualTo("password", "The two passwords differ.")]
    )


class NewUserForm(FlaskForm):
    email = EmailField("Email", [InputRequired("Enter an email."), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    password = PasswordField(
        "Initial password", [InputRequired("Choose an initial password."), Length(max=1024)]
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
