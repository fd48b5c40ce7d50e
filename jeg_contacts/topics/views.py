"""Back office: interest topics (administrators only)."""

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import Topic
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.topics import services
from jeg_contacts.topics.forms import NewTopicForm, TopicLabelsForm

bp = Blueprint("topics", __name__, url_prefix="/admin")


def _show_error(form: FlaskForm, error: ValidationFailed) -> None:
    db.session.rollback()
    field = getattr(form, error.field, None)
    if field is None:
        form.form_errors.append(error.message)
    else:
        field.errors = [*field.errors, error.message]


def _topic_data(form: TopicLabelsForm | NewTopicForm) -> services.TopicData:
    return services.TopicData(
        label_en=form.label_en.data,
        label_fr=form.label_fr.data,
        label_ru=form.label_ru.data,
        group=form.group.data,
    )


def _back_to(topic: Topic) -> Response:
    # The anchor brings keyboard users back to the row they acted on.
    return redirect(url_for(".index", _anchor=f"topic-{topic.id}"))


def _index(new_topic: NewTopicForm, status: int = 200) -> tuple[str, int]:
    return render_template(
        "topics/index.html",
        groups=services.topics_by_group(),
        subscribers=services.subscriber_counts(),
        form=new_topic,
    ), status


@bp.get("/topics")
@requires(Role.ADMIN)
def index() -> tuple[str, int]:
    return _index(NewTopicForm(formdata=None))


@bp.post("/topics")
@requires(Role.ADMIN)
def create() -> Response | tuple[str, int]:
    form = NewTopicForm()
    if form.validate():
        try:
            topic = services.create_topic(form.slug.data, _topic_data(form))
            db.session.commit()
        except ValidationFailed as error:
            _show_error(form, error)
        else:
            flash(f"Created the topic {topic.label_en}.", "success")
            return _back_to(topic)
    return _index(form, 400)


@bp.route("/topics/<int:topic_id>/edit", methods=["GET", "POST"])
@requires(Role.ADMIN)
def edit(topic_id: int) -> Response | str | tuple[str, int]:
    topic = db.get_or_404(Topic, topic_id)
    if request.method == "GET":
        form = TopicLabelsForm(
            formdata=None,
            label_en=topic.label_en,
            label_fr=topic.label_fr,
            label_ru=topic.label_ru,
            group=topic.group.value,
        )
        return render_template("topics/edit.html", topic=topic, form=form)
    form = TopicLabelsForm()
    if form.validate():
        try:
            changes = services.rename_topic(topic, _topic_data(form))
            db.session.commit()
        except ValidationFailed as error:
            _show_error(form, error)
        else:
            flash(
                f"Saved the topic {topic.label_en}." if changes else "Nothing to save: no change.",
                "success",
            )
            return _back_to(topic)
    return render_template("topics/edit.html", topic=topic, form=form), 400


@bp.post("/topics/<int:topic_id>/move")
@requires(Role.ADMIN)
def move(topic_id: int) -> Response:
    topic = db.get_or_404(Topic, topic_id)
    direction = request.form.get("direction", "")
    try:
        neighbour = services.move_topic(topic, direction)
    except ValidationFailed as error:
        db.session.rollback()
        flash(error.message, "error")
        return _back_to(topic)
    db.session.commit()
    if neighbour is None:
        where = "first" if direction == "up" else "last"
        flash(f"{topic.label_en} is already {where} in its group.", "error")
    else:
        flash(f"Moved {topic.label_en} {direction}.", "success")
    return _back_to(topic)


def _set_active(topic_id: int, active: bool) -> Response:
    topic = db.get_or_404(Topic, topic_id)
    changed = services.set_active(topic, active)
    db.session.commit()
    if not changed:
        flash(f"{topic.label_en} is already {'active' if active else 'archived'}.", "error")
    elif active:
        flash(f"Restored {topic.label_en}: it is offered at sign-up again.", "success")
    else:
        flash(
            f"Archived {topic.label_en}: it is no longer offered; its subscriptions are kept.",
            "success",
        )
    return _back_to(topic)


@bp.post("/topics/<int:topic_id>/archive")
@requires(Role.ADMIN)
def archive(topic_id: int) -> Response:
    return _set_active(topic_id, False)


@bp.post("/topics/<int:topic_id>/restore")
@requires(Role.ADMIN)
def restore(topic_id: int) -> Response:
    return _set_active(topic_id, True)
