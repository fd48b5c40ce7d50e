"""Managing interest topics from the back office (administrators only)."""

import re
import secrets

import pytest
import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, ContactStatus, Topic, TopicGroup
from jeg_contacts.extensions import db
from tests.conftest import audit_entries, csrf_token, topic_ids

NEW_TOPIC = {
    "slug": "flood-risk",
    "label_en": "Flood risk at industrial sites",
    "label_fr": "Risque d'inondation des sites industriels",
    "label_ru": "Риск наводнений на промышленных объектах",
    "group": "general",
}


def topic(app, slug: str) -> Topic | None:
    with app.app_context():
        found = db.session.scalar(sa.select(Topic).where(Topic.slug == slug))
        db.session.expunge_all()
        return found


def group_order(app, group: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Topic.slug)
                .where(Topic.group == TopicGroup(group))
                .order_by(Topic.position, Topic.id)
            )
        )


def subscribe(app, slugs: list[str], status: str = "active") -> int:
    """A contact subscribed to these topics; returns its id."""
    with app.app_context():
        email = f"{secrets.token_hex(4)}@example.org"
        contact = Contact(
            given_name="Anna",
            family_name="Keller",
            email=email,
            email_key=email,
            status=ContactStatus(status),
            link_secret=secrets.token_urlsafe(16),
            topics=list(db.session.scalars(sa.select(Topic).where(Topic.slug.in_(slugs)))),
        )
        db.session.add(contact)
        db.session.commit()
        return contact.id


def post(client, url: str, **data: str):
    return client.post(url, data={"csrf_token": csrf_token(client, "/admin/topics"), **data})


def signup_offers(client, topic_id: int) -> bool:
    return f'id="topic-{topic_id}"' in client.get("/signup").text


def test_list_shows_groups_labels_states_and_active_subscribers(app, admin_client):
    subscribe(app, ["pipelines", "response-exercises"])
    subscribe(app, ["pipelines"])
    subscribe(app, ["pipelines"], status="pending")
    subscribe(app, ["pipelines"], status="unsubscribed")
    [pipelines] = topic_ids(app, "pipelines")

    page = admin_client.get("/admin/topics").text

    headings = re.findall(r'<h2 id="group-(\w+)">', page)
    assert headings == ["guidance", "activities", "general"]
    row = re.search(rf'<tr id="topic-{pipelines}".*?</tr>', page, re.S).group(0)
    assert "Pipeline safety" in row
    assert '<td lang="fr">Sécurité des pipelines</td>' in row
    assert '<td lang="ru">Безопасность трубопроводов</td>' in row
    assert '<td class="number">2</td>' in row  # pending and unsubscribed do not count
    assert "active</span>" in row
    # Topics appear in display order within their group.
    slugs = re.findall(r"<code>([a-z0-9-]+)</code>", page)
    assert [s for s in slugs if s in group_order(app, "guidance")] == group_order(app, "guidance")


def test_admin_creates_a_topic_offered_at_signup_and_audited(app, admin_client, client):
    response = post(admin_client, "/admin/topics", **NEW_TOPIC)

    assert response.status_code == 302
    created = topic("flood-risk") if False else topic(app, "flood-risk")
    assert created.active and created.group is TopicGroup.GENERAL
    assert (created.label_fr, created.label_ru) == (NEW_TOPIC["label_fr"], NEW_TOPIC["label_ru"])
    assert response.headers["Location"] == f"/admin/topics#topic-{created.id}"
    assert group_order(app, "general")[-1] == "flood-risk"
    assert signup_offers(client, created.id)
    [entry] = audit_entries(app, "topic.created")
    assert (entry.entity_type, entry.entity_id, entry.actor) == (
        "topic",
        created.id,
        "admin@unece.test",
    )
    assert entry.changes["slug"] == [None, "flood-risk"]


@pytest.mark.parametrize(
    ("label_en", "identifier"),
    [
        ("Flood risk at industrial sites", "flood-risk-at-industrial-sites"),
        ("Pipeline safety", "pipeline-safety"),
        ("Pipelines", "pipelines-2"),  # taken by a seeded topic
        ("Sécurité & santé (ÉU)", "securite-sante-eu"),
        ("Безопасность", "topic"),
        ("x " * 60, ("x-" * 38)[:75]),  # cut at a word, with room for a "-2"
    ],
)
def test_a_new_topics_identifier_is_made_from_its_name(app, admin_client, label_en, identifier):
    response = post(
        admin_client, "/admin/topics", **{**NEW_TOPIC, "slug": "", "label_en": label_en}
    )

    assert response.status_code == 302
    created = topic(app, identifier)
    assert created is not None and created.label_en == label_en.strip()


def test_the_identifier_is_an_advanced_choice_named_in_words(app, admin_client):
    page = admin_client.get("/admin/topics").get_data(as_text=True)

    assert "Slug" not in page and "slug" not in page.replace('name="slug"', "").replace(
        'id="slug"', ""
    ).replace('for="slug"', "").replace("slug-", "")
    assert "<summary>Advanced: identifier</summary>" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slug": "Flood-Risk"}, "Use lowercase letters a-z, digits and single hyphens"),
        ({"slug": "flood risk"}, "Use lowercase letters a-z, digits and single hyphens"),
        ({"slug": "flood_risk"}, "Use lowercase letters a-z, digits and single hyphens"),
        ({"slug": "-flood"}, "Use lowercase letters a-z, digits and single hyphens"),
        ({"slug": "flood--risk"}, "Use lowercase letters a-z, digits and single hyphens"),
        ({"slug": "crue-é"}, "Use lowercase letters a-z, digits and single hyphens"),
        ({"slug": "x" * 81}, "80"),
        ({"slug": "pipelines"}, "A topic with the identifier pipelines already exists"),
        ({"label_en": ""}, "Enter the label in English"),
        ({"label_fr": "   "}, "Enter the label in French"),
        ({"label_ru": ""}, "Enter the label in Russian"),
        ({"label_en": "Two\nlines"}, "single line"),
        ({"label_ru": "я" * 201}, "200"),
        ({"group": "secret"}, "Not a valid choice"),
    ],
)
def test_invalid_new_topics_are_refused_with_a_message(app, admin_client, changes, message):
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Topic))

    response = post(admin_client, "/admin/topics", **{**NEW_TOPIC, **changes})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert 'class="error-summary"' in page and 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Topic)) == before
    assert audit_entries(app, "topic.created") == []


def test_rename_changes_labels_keeps_the_slug_and_is_audited(app, admin_client):
    [pipelines] = topic_ids(app, "pipelines")
    form = admin_client.get(f"/admin/topics/{pipelines}/edit").text
    assert 'value="Sécurité des pipelines"' in form and 'lang="fr"' in form

    response = post(
        admin_client,
        f"/admin/topics/{pipelines}/edit",
        label_en="Safety of pipelines",
        label_fr="Sécurité des oléoducs et gazoducs",
        label_ru="Безопасность трубопроводов",
        group="guidance",
        slug="hijacked-slug",
    )

    assert response.status_code == 302
    renamed = topic(app, "pipelines")
    assert renamed.id == pipelines
    assert (renamed.label_en, renamed.label_fr) == (
        "Safety of pipelines",
        "Sécurité des oléoducs et gazoducs",
    )
    assert topic(app, "hijacked-slug") is None
    [entry] = audit_entries(app, "topic.renamed")
    assert entry.entity_id == pipelines
    assert entry.changes == {
        "label_en": ["Pipeline safety", "Safety of pipelines"],
        "label_fr": ["Sécurité des pipelines", "Sécurité des oléoducs et gazoducs"],
    }


def test_rename_refuses_a_missing_label(app, admin_client):
    [pipelines] = topic_ids(app, "pipelines")
    response = post(
        admin_client,
        f"/admin/topics/{pipelines}/edit",
        label_en="Pipeline safety",
        label_fr="",
        label_ru="Безопасность трубопроводов",
        group="guidance",
    )
    assert response.status_code == 400
    assert "Enter the label in French" in response.text
    assert topic(app, "pipelines").label_fr == "Sécurité des pipelines"
    assert audit_entries(app, "topic.renamed") == []


def test_moving_a_topic_to_another_group_puts_it_last_there(app, admin_client):
    [pipelines] = topic_ids(app, "pipelines")
    current = topic(app, "pipelines")
    response = post(
        admin_client,
        f"/admin/topics/{pipelines}/edit",
        label_en=current.label_en,
        label_fr=current.label_fr,
        label_ru=current.label_ru,
        group="activities",
    )
    assert response.status_code == 302
    assert "pipelines" not in group_order(app, "guidance")
    assert group_order(app, "activities")[-1] == "pipelines"


def test_move_up_and_down_swap_neighbours_within_the_group(app, admin_client, client):
    order = group_order(app, "guidance")
    second = order[1]
    [second_id] = topic_ids(app, second)

    assert post(admin_client, f"/admin/topics/{second_id}/move", direction="up").status_code == 302
    assert group_order(app, "guidance") == [order[1], order[0], *order[2:]]
    # The public sign-up form follows the new order.
    page = client.get("/signup").text
    first_ids = topic_ids(app, order[0])
    assert page.index(f'id="topic-{second_id}"') < page.index(f'id="topic-{first_ids[0]}"')

    post(admin_client, f"/admin/topics/{second_id}/move", direction="down")
    post(admin_client, f"/admin/topics/{second_id}/move", direction="down")
    assert group_order(app, "guidance") == [order[0], order[2], order[1], *order[3:]]
    moves = audit_entries(app, "topic.moved")
    assert [entry.entity_id for entry in moves] == [second_id] * 3
    assert f"above “{topic(app, order[0]).label_en}”" in moves[0].summary


def test_first_cannot_move_up_and_last_cannot_move_down(app, admin_client):
    order = group_order(app, "guidance")
    [first_id] = topic_ids(app, order[0])
    [last_id] = topic_ids(app, order[-1])

    response = post(admin_client, f"/admin/topics/{first_id}/move", direction="up")
    assert response.status_code == 302
    assert "already first in its group" in admin_client.get("/admin/topics").text
    post(admin_client, f"/admin/topics/{last_id}/move", direction="down")
    assert "already last in its group" in admin_client.get("/admin/topics").text
    post(admin_client, f"/admin/topics/{last_id}/move", direction="sideways")
    assert group_order(app, "guidance") == order
    assert audit_entries(app, "topic.moved") == []


def test_move_buttons_are_labelled_and_the_ends_disabled(app, admin_client):
    order = group_order(app, "guidance")
    [first_id] = topic_ids(app, order[0])
    page = admin_client.get("/admin/topics").text
    row = re.search(rf'<tr id="topic-{first_id}".*?</tr>', page, re.S).group(0)
    assert re.search(r'value="up" disabled aria-label="Move [^"]+ up"', row)
    assert re.search(r'value="down" aria-label="Move [^"]+ down"', row)


def test_moving_works_when_positions_are_equal(app, admin_client):
    with app.app_context():
        for found in db.session.scalars(sa.select(Topic).where(Topic.group == TopicGroup.GUIDANCE)):
            found.position = 0
        db.session.commit()
    order = group_order(app, "guidance")
    [last_id] = topic_ids(app, order[-1])
    post(admin_client, f"/admin/topics/{last_id}/move", direction="up")
    assert group_order(app, "guidance") == [*order[:-2], order[-1], order[-2]]


def test_archived_topic_leaves_signup_keeps_subscriptions_and_can_be_restored(
    app, admin_client, client
):
    [pipelines] = topic_ids(app, "pipelines")
    subscriber = subscribe(app, ["pipelines", "response-exercises"])
    assert signup_offers(client, pipelines)

    assert post(admin_client, f"/admin/topics/{pipelines}/archive").status_code == 302

    assert topic(app, "pipelines").active is False
    assert not signup_offers(client, pipelines)
    with app.app_context():
        contact = db.session.get(Contact, subscriber)
        assert {t.slug for t in contact.topics} == {"pipelines", "response-exercises"}
    page = admin_client.get("/admin/topics").text
    row = re.search(
        rf'<tr id="topic-{pipelines}" tabindex="-1" class="archived">.*?</tr>', page, re.S
    )
    assert row and "archived</span>" in row.group(0) and '<td class="number">1</td>' in row.group(0)
    assert "Restore" in row.group(0)

    assert post(admin_client, f"/admin/topics/{pipelines}/restore").status_code == 302
    assert topic(app, "pipelines").active is True
    assert signup_offers(client, pipelines)
    assert [entry.changes for entry in audit_entries(app, "topic.archived")] == [
        {"active": [True, False]}
    ]
    assert [entry.entity_id for entry in audit_entries(app, "topic.restored")] == [pipelines]


def test_archiving_twice_changes_nothing_more(app, admin_client):
    [pipelines] = topic_ids(app, "pipelines")
    post(admin_client, f"/admin/topics/{pipelines}/archive")
    post(admin_client, f"/admin/topics/{pipelines}/archive")
    assert "already archived" in admin_client.get("/admin/topics").text
    assert len(audit_entries(app, "topic.archived")) == 1


def test_signing_up_with_an_archived_topic_is_refused(app, admin_client, client):
    from tests.conftest import post_signup

    [pipelines] = topic_ids(app, "pipelines")
    post(admin_client, f"/admin/topics/{pipelines}/archive")
    response = post_signup(client, app, topics=[str(pipelines)])
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_unknown_topic_is_404(admin_client):
    assert admin_client.get("/admin/topics/9999/edit").status_code == 404
    assert post(admin_client, "/admin/topics/9999/archive").status_code == 404
    assert post(admin_client, "/admin/topics/9999/move", direction="up").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_topics_are_for_administrators_only(app, role, request):
    client = request.getfixturevalue(f"{role}_client")
    [pipelines] = topic_ids(app, "pipelines")
    token = csrf_token(client, "/admin/account/password")
    assert client.get("/admin/topics").status_code == 403
    assert client.get(f"/admin/topics/{pipelines}/edit").status_code == 403
    for url, data in [
        ("/admin/topics", NEW_TOPIC),
        (f"/admin/topics/{pipelines}/edit", {**NEW_TOPIC, "label_en": "Hijacked"}),
        (f"/admin/topics/{pipelines}/move", {"direction": "down"}),
        (f"/admin/topics/{pipelines}/archive", {}),
        (f"/admin/topics/{pipelines}/restore", {}),
    ]:
        assert client.post(url, data={"csrf_token": token, **data}).status_code == 403, url
    assert topic(app, "flood-risk") is None
    assert topic(app, "pipelines").label_en == "Pipeline safety"
    assert topic(app, "pipelines").active
    assert "/admin/topics" not in client.get("/admin/organisations").text  # not in the menu


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/admin/topics")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
