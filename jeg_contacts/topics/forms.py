"""Shapes of the topic forms; the rules live in topics.services."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from jeg_contacts.contacts.models import TOPIC_GROUP_LABELS


def _label(language: str, code: str) -> StringField:
    return StringField(
        f"Label in {language}",
        [InputRequired(f"Enter the label in {language}."), Length(max=200)],
        render_kw={"lang": code},
    )


def _group() -> SelectField:
    return SelectField(
        "Group",
        [InputRequired("Choose a group.")],
        choices=[SelectChoice(group.value, label) for group, label in TOPIC_GROUP_LABELS.items()],
    )


class TopicLabelsForm(FlaskForm):
    """Rename: the three labels and the group; the slug stays."""

    label_en = _label("English", "en")
    label_fr = _label("French", "fr")
    label_ru = _label("Russian", "ru")
    group = _group()


class NewTopicForm(FlaskForm):
    # Declared in page order, which is also the order of the error summary.
    label_en = _label("English", "en")
    label_fr = _label("French", "fr")
    label_ru = _label("Russian", "ru")
    group = _group()
    slug = StringField("Identifier (optional)", [Length(max=80)])
