"""The import service: what each row becomes, and what never happens."""

import io

import pytest
import sqlalchemy as sa

from jeg_contacts.audit.models import AuditEntry
from jeg_contacts.contacts.models import (
    ConsentAction,
    Contact,
    ContactStatus,
    Organisation,
    Topic,
)
from jeg_contacts.extensions import db
from jeg_contacts.imports import mapping
from jeg_contacts.imports import services as imports
from jeg_contacts.imports.mapping import ImportField, suggest_mapping
from jeg_contacts.imports.reading import UnreadableFile, open_table
from jeg_contacts.imports.services import Outcome
from tests.conftest import audit_entries, outbox_messages
from tests.directory.conftest import make_contact
from tests.imports.conftest import (
    BASIS,
    HEADER,
    contacts_by_email,
    count_contacts,
    csv_bytes,
    row,
    run_import,
    write,
)


def import_rows(app, tmp_path, rows, *, header=HEADER, **settings):
    return run_import(app, write(tmp_path, "list.csv", csv_bytes(rows, header=header)), **settings)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            ["E-mail", "First name", "Last name", "Organization", "Country", "Topics"],
            ["email", "given_name", "family_name", "organisation", "country", "topics"],
        ),
        (
            ["Courriel", "Prénom", "Nom", "Organisme", "Pays", "Thèmes", "Téléphone"],
            ["email", "given_name", "family_name", "organisation", "country", "topics", "phone"],
        ),
        (
            ["Электронная почта", "Имя", "Фамилия", "Организация", "Страна", "Должность"],
            ["email", "given_name", "family_name", "organisation", "country", "job_title"],
        ),
        (["Email", "Notes", "EMAIL", "Name"], ["email", "", "", "full_name"]),
    ],
)
def test_columns_are_recognised_in_three_languages(header, expected):
    assert suggest_mapping(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            ["E-mail_address", "given_name", "familyName", "Organisation_Country"],
            ["email", "given_name", "family_name", "organisation_country"],
        ),
        (
            ["EMailAddress", "FIRST-NAME", "FAMILY-NAME", "organisation.website", "job_title"],
            ["email", "given_name", "family_name", "organisation_website", "job_title"],
        ),
        (
            [
                "e_mail",
                "firstName",
                "LastName",
                "stakeholderType",
                "PHONE_NUMBER",
                "Nom_de_famille",
            ],
            ["email", "given_name", "family_name", "stakeholder_type", "phone", ""],
        ),
        (
            ["adresse_électronique", "Prénom", "nomDeFamille"],
            ["email", "given_name", "family_name"],
        ),
    ],
)
def test_columns_are_recognised_whatever_their_separators_and_case(header, expected):
    assert suggest_mapping(header) == expected


def test_new_contacts_get_one_imported_record(app, tmp_path):
    summary = import_rows(
        app,
        tmp_path,
        [row("Ana.Silva@Example.org", "  Ana ", "Silva")],
        status=ContactStatus.ACTIVE,
        basis=BASIS,
    )

    assert summary.count(Outcome.CREATE) == 1
    ana = contacts_by_email(app)["Ana.Silva@example.org"]
    assert ana.email_key == "ana.silva@example.org"
    assert (ana.given_name, ana.search_name) == ("Ana", "ana silva")
    assert ana.status is ContactStatus.ACTIVE
    assert ana.confirmed_at is not None
    assert ana.country == "DE"  # the organisation's, as sign-up does
    assert [event.action for event in ana.consent_events] == [ConsentAction.IMPORTED]
    assert ana.consent_events[0].source == "imported by tests from list.csv"
    assert ana.consent_events[0].detail == (
        f"basis: {BASIS}; status: active; topics: pipelines; language: en"
    )
    assert ana.consent_events[0].wording_version is None
    [created] = audit_entries(app, "contact.created")
    assert created.entity_id == ana.id
    assert created.summary == "Imported from list.csv as active"
    [summary_entry] = audit_entries(app, "contacts.imported")
    assert summary_entry.changes["create"] == 1
    assert summary_entry.changes["mapping"]["Email"] == "email"


def test_organisations_are_matched_on_normalised_name_and_country(app, tmp_path):
    make_contact(app, organisation="Université de Genève", organisation_country="CH")

    import_rows(
        app,
        tmp_path,
        [
            row("a@example.org", organisation="universite  de GENEVE", country="CH"),
            row("b@example.org", organisation="Université de Genève", country="FR"),
            row("c@example.org", organisation="Universite de Geneve", country="FR"),
        ],
    )

    with app.app_context():
        organisations = db.session.execute(
            sa.select(Organisation.name, Organisation.country).order_by(Organisation.id)
        ).all()
    assert organisations == [("Université de Genève", "CH"), ("Université de Genève", "FR")]
    contacts = contacts_by_email(app)
    assert contacts["a@example.org"].organisation.name == "Université de Genève"


def test_duplicates_within_the_file_are_reported_and_the_first_wins(app, tmp_path):
    report = io.StringIO()
    summary = run_import(
        app,
        write(
            tmp_path,
            "list.csv",
            csv_bytes([row("ana@example.org"), row("bo@example.org"), row("ANA@example.org", "X")]),
        ),
        report=report,
    )

    assert summary.count(Outcome.CREATE) == 2
    [rejected] = summary.examples[Outcome.REJECT]
    assert rejected.number == 4
    assert rejected.detail == "Same email address as row 2; only the first is imported."
    assert contacts_by_email(app)["ana@example.org"].given_name == "Ana"
    assert "Same email address as row 2" in report.getvalue()


def test_erased_addresses_are_never_added_again(app, tmp_path):
    make_contact(app, email="gone@example.org", status="erased")

    summary = import_rows(app, tmp_path, [row("Gone@Example.org"), row("new@example.org")])

    [rejected] = summary.examples[Outcome.REJECT]
    assert "asked for their data to be erased" in rejected.detail
    assert set(contacts_by_email(app)) == {"new@example.org"}


def test_existing_contacts_are_skipped_unless_updates_are_asked_for(app, tmp_path):
    contact_id = make_contact(app, email="ana@example.org", given_name="Ana")
    rows = [row("ana@example.org", "Anna", topics="pipelines; oil-terminals")]

    skipped = import_rows(app, tmp_path, rows)

    assert skipped.count(Outcome.SKIP) == 1
    assert skipped.examples[Outcome.SKIP][0].contact_id == contact_id
    assert contacts_by_email(app)["ana@example.org"].given_name == "Ana"

    updated = import_rows(app, tmp_path, rows, update_existing=True)

    assert updated.count(Outcome.UPDATE) == 1
    assert updated.examples[Outcome.UPDATE][0].detail == "Changes given name, topics"
    ana = contacts_by_email(app)["ana@example.org"]
    assert ana.given_name == "Anna"
    assert [topic.slug for topic in ana.topics] == ["pipelines", "oil-terminals"]
    assert ana.version == 2
    assert ana.consent_events[-1].action is ConsentAction.PREFERENCES_CHANGED
    [entry] = audit_entries(app, "contact.updated")
    assert entry.changes["given_name"] == ["Ana", "Anna"]
    assert entry.summary == "Updated from list.csv"

    again = import_rows(app, tmp_path, rows, update_existing=True)
    assert again.count(Outcome.UNCHANGED) == 1


def test_updates_keep_what_the_file_leaves_empty_and_the_status(app, tmp_path):
    make_contact(app, email="ana@example.org", status="unsubscribed")
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact))
        contact.phone, contact.job_title = "+49 1", "Head of unit"
        db.session.commit()
    header = ["Email", "Phone", "Job title", "Status"]

    import_rows(
        app, tmp_path, [["ana@example.org", "", "Director", "active"]], header=header,
        update_existing=True,
    )  # fmt: skip

    ana = contacts_by_email(app)["ana@example.org"]
    assert (ana.phone, ana.job_title) == ("+49 1", "Director")
    assert ana.status is ContactStatus.UNSUBSCRIBED
    assert ana.organisation.name == "Umweltbundesamt"


def test_updates_keep_archived_topics(app, tmp_path):
    make_contact(app, email="ana@example.org", topics=("pipelines", "oil-terminals"))
    with app.app_context():
        db.session.scalar(sa.select(Topic).where(Topic.slug == "oil-terminals")).active = False
        db.session.commit()

    import_rows(app, tmp_path, [row("ana@example.org", topics="checklists")], update_existing=True)

    slugs = [topic.slug for topic in contacts_by_email(app)["ana@example.org"].topics]
    assert sorted(slugs) == ["checklists", "oil-terminals"]


def test_values_are_read_in_three_languages(app, tmp_path):
    header = [
        "Courriel",
        "Civilité",
        "Prénom",
        "Nom",
        "Organisme",
        "Type",
        "Pays",
        "Langue",
        "Thèmes",
    ]
    rows = [
        ["a@example.org", "Mme", "Anne", "Roy", "ONG Eau", "ONG", "Allemagne", "français",
         "Sécurité des pipelines, Ateliers et séminaires"],
        ["b@example.org", "г-н", "Иван", "Петров", "МЧС", "Национальный орган власти",  # noqa: RUF001
         "Германия", "русский", "Безопасность трубопроводов"],
        ["c@example.org", "Prof.", "Jo", "Ng", "Uni", "University", "DEU", "EN",
         "pipelines|checklists"],
    ]  # fmt: skip

    summary = import_rows(app, tmp_path, rows, header=header)

    assert summary.count(Outcome.CREATE) == 3, summary.examples[Outcome.REJECT]
    contacts = contacts_by_email(app)
    anne, ivan, jo = (contacts[f"{letter}@example.org"] for letter in "abc")
    assert (anne.salutation, anne.language, anne.country) == ("ms", "fr", "DE")
    assert anne.organisation.stakeholder_type.value == "ngo"
    assert [t.slug for t in anne.topics] == ["pipelines", "workshops-seminars"]
    assert (ivan.salutation, ivan.language) == ("mr", "ru")
    assert ivan.organisation.stakeholder_type.value == "national_authority"
    assert (jo.salutation, jo.country, jo.language) == ("prof", "DE", "en")


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"type": "Martians"}, "“Martians” is not a type of organisation"),
        ({"country": "Atlantis"}, "Organisation country: “Atlantis” is not a country we know."),
        ({"topics": "pipelines; knitting"}, "Topics: No topic is called “knitting”."),
        ({"topics": ""}, "Topics: Choose at least one topic."),
        ({"organisation": ""}, "Organisation: This field is required."),
        ({"organisation": "<b>Bold</b>"}, "Names cannot contain the characters < or >."),
    ],
)
def test_rows_breaking_a_rule_are_rejected_with_the_reason(app, tmp_path, cells, message):
    summary = import_rows(app, tmp_path, [row("ana@example.org", **cells)])

    [rejected] = summary.examples[Outcome.REJECT]
    assert message in rejected.detail
    assert count_contacts(app) == 0


def test_every_problem_of_a_row_is_listed(app, tmp_path):
    summary = import_rows(app, tmp_path, [row("nope", "", "", organisation="", type="?")])

    detail = summary.examples[Outcome.REJECT][0].detail
    for label in (
        "Email:",
        "Organisation:",
        "Type of organisation:",
        "Given name:",
        "Family name:",
    ):
        assert label in detail


def test_archived_topics_cannot_be_imported(app, tmp_path):
    with app.app_context():
        db.session.scalar(sa.select(Topic).where(Topic.slug == "pipelines")).active = False
        db.session.commit()

    summary = import_rows(app, tmp_path, [row("ana@example.org")])

    assert "“Pipeline safety” is archived" in summary.examples[Outcome.REJECT][0].detail


def test_cells_neutralised_by_an_export_are_restored(app, tmp_path):
    header = [*HEADER, "Phone", "Job title"]
    import_rows(
        app, tmp_path, [[*row("ana@example.org"), "'+41 22 917 12 34", "'-"]], header=header
    )

    ana = contacts_by_email(app)["ana@example.org"]
    assert ana.phone == "+41 22 917 12 34"
    assert ana.job_title == "-"


def test_statuses_in_the_file_may_only_be_more_careful(app, tmp_path):
    header = [*HEADER, "Status"]
    rows = [
        [*row("active@example.org"), "active"],
        [*row("pending@example.org"), "pending"],
        [*row("unsub@example.org"), "unsubscribed"],
        [*row("bounced@example.org"), "bounced"],
        [*row("erased@example.org"), "erased"],
    ]

    summary = import_rows(
        app, tmp_path, rows, header=header, status=ContactStatus.ACTIVE, basis=BASIS
    )

    statuses = {email: c.status.value for email, c in contacts_by_email(app).items()}
    assert statuses == {
        "active@example.org": "active",
        "pending@example.org": "pending",
        "unsub@example.org": "unsubscribed",
        "bounced@example.org": "bounced",
    }
    assert "“erased” cannot be imported" in summary.examples[Outcome.REJECT][0].detail
    unsub = contacts_by_email(app)["unsub@example.org"]
    assert [(e.action, e.detail.split("; ")[1]) for e in unsub.consent_events] == [
        (ConsentAction.IMPORTED, "status: unsubscribed")
    ]
    pending = contacts_by_email(app)["pending@example.org"]
    assert [e.action for e in pending.consent_events] == [ConsentAction.IMPORTED]
    assert pending.confirmed_at is None
    assert outbox_messages(app) == []  # only a pending import emails confirmation links


def test_pending_imports_send_confirmations_within_the_daily_limit(app, tmp_path):
    app.config["EMAILS_PER_ADDRESS_PER_DAY"] = 0

    summary = import_rows(app, tmp_path, [row("ana@example.org")], status=ContactStatus.PENDING)

    assert (summary.emails_sent, summary.emails_held) == (0, 1)
    assert contacts_by_email(app)["ana@example.org"].status is ContactStatus.PENDING

    app.config["EMAILS_PER_ADDRESS_PER_DAY"] = 3
    summary = import_rows(app, tmp_path, [row("bo@example.org")], status=ContactStatus.PENDING)

    assert (summary.emails_sent, summary.emails_held) == (1, 0)
    [message] = outbox_messages(app)
    assert "/confirm/" in message.get_body(preferencelist=("plain",)).get_content()


def test_a_dry_run_writes_nothing(app, tmp_path):
    summary = import_rows(app, tmp_path, [row("ana@example.org")], write=False)

    assert summary.count(Outcome.CREATE) == 1
    assert count_contacts(app) == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_a_file_failing_half_way_leaves_nothing_behind(app, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    path = write(tmp_path, "list.csv", csv_bytes([row(f"p{i}@example.org") for i in range(6)]))
    with app.test_request_context():
        table = open_table(path)
        good_rows = table.rows

        def breaking_rows():
            for number, source in enumerate(good_rows()):
                if number == 4:
                    raise UnreadableFile("The disk went away.")
                yield source

        monkeypatch.setattr(table, "rows", breaking_rows)
        importer = imports.Importer(
            table,
            mapping.ImportSettings(mapping=tuple(suggest_mapping(table.header))),
            file_name="list.csv",
            actor=imports.Actor(None, "tests"),
            write=True,
        )
        with pytest.raises(UnreadableFile):
            importer.run()
        db.session.rollback()

    assert count_contacts(app) == 0


def writes_while_importing(app, path, **run):
    """Import `path` chunk by chunk; how many writes had been sent when each chunk was checked,
    and what run() raised, if anything."""
    writes, seen = [], []

    def count_writes(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    with app.test_request_context():
        sa.event.listen(db.engine, "before_cursor_execute", count_writes)
        try:
            table = open_table(path)
            importer = imports.Importer(
                table,
                mapping.ImportSettings(mapping=tuple(suggest_mapping(table.header))),
                file_name=path.name,
                actor=imports.Actor(None, "tests"),
                write=True,
                progress=lambda rows: seen.append(len(writes)),
            )
            try:
                importer.run(**run)
            except imports.PreviewOutdated as error:
                db.session.rollback()
                return seen, writes, error
            db.session.commit()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count_writes)
    return seen, writes, None


def test_nothing_is_written_before_every_row_is_checked(app, tmp_path, monkeypatch):
    # SQLite holds its one write lock from the first write to the commit: the writes come
    # last so that sign-ups are not kept waiting while a big file is checked.
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    path = write(tmp_path, "list.csv", csv_bytes([row(f"p{i}@example.org") for i in range(5)]))

    seen, writes, _ = writes_while_importing(app, path)

    assert seen == [0, 0, 0]
    assert writes
    assert count_contacts(app) == 5


def test_an_import_whose_numbers_changed_is_refused_before_any_write(app, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([row("ana@example.org")]))
    expected = {"create": 0, "update": 0, "unchanged": 0, "skip": 1, "reject": 0, "pending": 0}

    _, writes, refused = writes_while_importing(app, path, expected=expected)

    assert refused is not None
    assert refused.summary.count(Outcome.CREATE) == 1
    assert writes == []
    assert count_contacts(app) == 0


def test_a_mapping_without_the_needed_columns_is_refused(app, tmp_path):
    path = write(tmp_path, "list.csv", csv_bytes([["a@example.org"]], header=["Email"]))

    from jeg_contacts.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as error:
        run_import(app, path)
    assert "Choose the columns with the given and family names" in error.value.message


def test_full_names_are_split_into_given_and_family_names(app, tmp_path):
    header = ["Email", "Name", "Organisation", "Country"]
    rows = [
        ["a@example.org", "Ana Maria Silva", "UBA", "DE"],
        ["b@example.org", "Dupont, Jean-Paul", "UBA", "DE"],
    ]

    import_rows(
        app, tmp_path, rows, header=header, default_type="national_authority",
        default_topic_ids=tuple(_topic_ids(app, "pipelines")),
    )  # fmt: skip

    contacts = contacts_by_email(app)
    assert (contacts["a@example.org"].given_name, contacts["a@example.org"].family_name) == (
        "Ana Maria",
        "Silva",
    )
    assert contacts["b@example.org"].family_name == "Dupont"
    assert contacts["b@example.org"].given_name == "Jean-Paul"


def _topic_ids(app, *slugs):
    from tests.conftest import topic_ids

    return topic_ids(app, *slugs)


def test_field_labels_cover_every_field():
    assert set(mapping.FIELD_LABELS) == set(ImportField)
