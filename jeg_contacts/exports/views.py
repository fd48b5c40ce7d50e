"""Back office: exporting and importing contact lists, and staff-handled data requests."""

import json
from contextlib import closing
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import Contact, ContactStatus, StakeholderType
from jeg_contacts.countries import country_choices, unece_member_codes
from jeg_contacts.directory.services import (
    MAX_ID,
    ContactFilter,
    all_topics,
    describe_filter,
    normalise_sort,
)
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.exports import personal_data, services, uploads
from jeg_contacts.exports.forms import CommitForm, EraseForm, ImportSettingsForm, UploadForm
from jeg_contacts.exports.imports import (
    DEFAULT_MAX_PENDING,
    DEFAULT_MAX_ROWS,
    Actor,
    Importer,
    Outcome,
    PreviewOutdated,
    TooManyPending,
)
from jeg_contacts.exports.mapping import (
    ImportField,
    ImportSettings,
    mapping_problems,
    suggest_mapping,
)
from jeg_contacts.exports.reading import Table, UnreadableFile, megabytes
from jeg_contacts.extensions import db

bp = Blueprint("exports", __name__, url_prefix="/admin")

SAMPLE_ROWS = 3
# Personal data: not kept by browsers or proxies, and never reinterpreted as another type.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', **PRIVATE_HEADERS}


# --- Export -------------------------------------------------------------------------------


def _country_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    unece = set(unece_member_codes())
    choices = country_choices("en")
    return [
        ("UNECE member States", [pair for pair in choices if pair[0] in unece]),
        ("Other countries", [pair for pair in choices if pair[0] not in unece]),
    ]


def _export_args(contact_filter: ContactFilter, sort: str, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = contact_filter.to_args()
    if sort != "name":
        args["sort"] = sort
    return args | {key: value for key, value in extra.items() if value}


def _chosen_columns() -> list[str]:
    if request.args.get("columns_chosen"):
        return request.args.getlist("column")
    return list(services.DEFAULT_COLUMNS)


@bp.get("/exports")
def index() -> str:
    contact_filter = services.exportable(ContactFilter.from_args(request.args))
    sort = normalise_sort(request.args.get("sort"))
    columns = _chosen_columns()
    format_key = request.args.get("format", services.DEFAULT_FORMAT)
    delimiter = request.args.get("delimiter", "comma")
    return render_template(
        "exports/index.html",
        contact_filter=contact_filter,
        description=describe_filter(contact_filter),
        count=services.count_matches(contact_filter),
        sort=sort,
        directory_args=_export_args(contact_filter, sort),
        formats=services.FORMATS.values(),
        chosen_format=format_key if format_key in services.FORMATS else services.DEFAULT_FORMAT,
        columns=services.COLUMNS.values(),
        chosen_columns=columns,
        delimiters=services.DELIMITER_LABELS,
        chosen_delimiter=delimiter if delimiter in services.DELIMITER_ARGS else "comma",
        topics=all_topics(),
        stakeholder_types=list(StakeholderType),
        country_groups=_country_groups(),
        statuses=[status for status in ContactStatus if status is not ContactStatus.ERASED],
    )


@bp.get("/exports/download")
def download() -> Response:
    contact_filter = ContactFilter.from_args(request.args)
    sort = request.args.get("sort")
    columns = _chosen_columns()

    def back(message: str) -> Response:
        flash(message, "error")
        return redirect(url_for(".index", **request.args.to_dict(flat=False)))

    if not columns:
        return back("Choose at least one column to export.")
    try:
        export = services.parse_export(
            contact_filter,
            format_key=request.args.get("format"),
            columns=columns,
            delimiter=request.args.get("delimiter"),
            sort=sort,
        )
    except ValidationFailed as error:
        return back(error.message)
    count = services.start_export(export, "back office")
    if not count:
        db.session.rollback()
        return back("No contact matches these filters, so there is nothing to export.")
    # The audit entry is durable before the first row leaves.
    db.session.commit()
    body = services.export_body(export)
    return Response(
        stream_with_context(body),
        mimetype=export.format.mimetype,
        headers=_attachment(export.filename),
    )


# --- Import -------------------------------------------------------------------------------


def _upload_or_404(token: str) -> uploads.Upload:
    upload = uploads.load(token, current_user.id)
    if upload is None:
        abort(404)
    return upload


def _actor() -> Actor:
    return Actor(current_user._get_current_object(), current_user.email)


def _max_rows() -> int:
    return current_app.config.get("IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)


def _pending_limit() -> int:
    return current_app.config.get("IMPORT_MAX_PENDING", DEFAULT_MAX_PENDING)


def _render_upload(form: UploadForm, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "exports/imports.html",
        form=form,
        max_bytes=megabytes(uploads.max_upload_bytes()),
        max_rows=_max_rows(),
        recent=uploads.recent(current_user.id),
        fields=list(ImportField),
    )
    return page, status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    if request.endpoint != "exports.imports":
        return render_template("errors/http.html", error=error), 413
    form = UploadForm(meta={"csrf": False}, formdata=None)
    form.file.errors = [
        f"The file is larger than {megabytes(uploads.max_upload_bytes())}, the most that can be "
        "imported at once. Split it into smaller files, or save it as XLSX, which is smaller."
    ]
    return _render_upload(form, 413)


@bp.route("/imports", methods=["GET", "POST"])
@requires(Role.EDITOR)
def imports() -> Response | tuple[str, int]:
    form = UploadForm()
    if not form.is_submitted():
        uploads.remove_stale()
        return _render_upload(form)
    if not form.validate():
        return _render_upload(form, 400)
    file = form.file.data
    try:
        upload = uploads.store(
            file.stream, file.filename, current_user.id, max_bytes=uploads.max_upload_bytes()
        )
    except uploads.UploadTooLarge:
        return too_large(RequestEntityTooLarge())
    upload.encoding, upload.delimiter = form.encoding.data, form.delimiter.data
    try:
        upload.open_table(_max_rows())
    except UnreadableFile as error:
        uploads.discard(upload)
        form.file.errors = [f"{upload.file_name}: {error.message}"]
        return _render_upload(form, 400)
    upload.save()
    return redirect(url_for(".import_preview", token=upload.token))


def _samples(table: Table) -> list[list[str]]:
    """The first few values of each column, to help choose what it holds."""
    rows = []
    try:
        with closing(table.rows()) as source:
            for row in source:
                rows.append(row.cells)
                if len(rows) == SAMPLE_ROWS:
                    break
    except UnreadableFile:
        pass
    return [
        [row[index][:60] for row in rows if index < len(row) and row[index].strip()]
        for index in range(len(table.header))
    ]


def _settings_form(upload: uploads.Upload, settings: ImportSettings) -> ImportSettingsForm:
    return ImportSettingsForm(
        formdata=None,
        topics=all_topics(),
        data={
            "encoding": upload.encoding,
            "delimiter": upload.delimiter,
            "status": settings.status.value,
            "existing": "update" if settings.update_existing else "skip",
            "default_type": settings.default_type,
            "default_language": settings.default_language,
            "default_topics": [str(topic_id) for topic_id in settings.default_topic_ids],
        },
    )


def _render_preview(
    upload: uploads.Upload,
    *,
    form: ImportSettingsForm | None = None,
    status: int = 200,
    outdated: bool = False,
) -> tuple[str, int]:
    context: dict[str, Any] = {
        "upload": upload,
        "fields": list(ImportField),
        "outcomes": Outcome,
        "outdated": outdated,
        "pending_limit": _pending_limit(),
    }
    try:
        table = upload.open_table(_max_rows())
    except UnreadableFile as error:
        form = form or _settings_form(upload, ImportSettings(mapping=()))
        return render_template(
            "exports/import_preview.html", form=form, table=None, error=error.message, **context
        ), 400
    settings = upload.import_settings(table.header, suggest_mapping(table.header))
    form = form or _settings_form(upload, settings)
    problems = mapping_problems(settings, table.header)
    summary, error = None, None
    if not problems:
        report_path = upload.report_path.with_suffix(".preview")
        try:
            with report_path.open("w", newline="", encoding="utf-8-sig") as report:
                summary = Importer(
                    table,
                    settings,
                    file_name=upload.file_name,
                    actor=_actor(),
                    report=report,
                    max_rows=_max_rows(),
                ).run()
            report_path.replace(upload.report_path)
        except UnreadableFile as failure:
            error = failure.message
        finally:
            report_path.unlink(missing_ok=True)
            db.session.rollback()
    page = render_template(
        "exports/import_preview.html",
        form=form,
        table=table,
        settings=settings,
        samples=_samples(table),
        problems=problems,
        summary=summary,
        error=error,
        commit_form=CommitForm(formdata=None, data=summary.expected() if summary else {}),
        **context,
    )
    return page, 400 if error else status


def _settings_from(form: ImportSettingsForm, table: Table) -> ImportSettings:
    fields = {member.value for member in ImportField}
    mapping = []
    for index in range(len(table.header)):
        chosen = request.form.get(f"column-{index}", "")
        mapping.append(chosen if chosen in fields else "")
    return ImportSettings(
        mapping=tuple(mapping),
        status=ContactStatus(form.status.data),
        update_existing=form.existing.data == "update",
        default_type=form.default_type.data or "",
        default_language=form.default_language.data,
        default_topic_ids=tuple(int(value) for value in form.default_topics.data or ()),
    )


@bp.route("/imports/<token>", methods=["GET", "POST"])
@requires(Role.EDITOR)
def import_preview(token: str) -> Response | tuple[str, int]:
    """The dry run: how the file is read, the column mapping, and what an import would do."""
    upload = _upload_or_404(token)
    if upload.result is not None:
        return render_template("exports/import_done.html", upload=upload, result=upload.result), 200
    if request.method == "GET":
        return _render_preview(upload)
    form = ImportSettingsForm(topics=all_topics())
    if not form.validate():
        return _render_preview(upload, form=form, status=400)
    reading_changed = (form.encoding.data, form.delimiter.data) != (
        upload.encoding,
        upload.delimiter,
    )
    upload.encoding, upload.delimiter = form.encoding.data, form.delimiter.data
    try:
        table = upload.open_table(_max_rows())
    except UnreadableFile:
        upload.save()
        return redirect(url_for(".import_preview", token=token))
    settings = _settings_from(form, table)
    if reading_changed:
        # The columns may come out differently: map them afresh from their names.
        settings = replace(settings, mapping=())
    upload.remember(settings)
    upload.save()
    return redirect(url_for(".import_preview", token=token) + "#preview")


@bp.post("/imports/<token>/commit")
@requires(Role.EDITOR)
def import_commit(token: str) -> Response | tuple[str, int]:
    upload = _upload_or_404(token)
    back = redirect(url_for(".import_preview", token=token))
    if upload.result is not None:
        return back
    form = CommitForm()
    if not form.validate():
        flash("The form was incomplete; nothing was imported. Check the preview again.", "error")
        return back
    report_path = upload.report_path.with_suffix(".commit")
    try:
        table = upload.open_table(_max_rows())
        settings = upload.import_settings(table.header, suggest_mapping(table.header))
        with report_path.open("w", newline="", encoding="utf-8-sig") as report:
            summary = Importer(
                table,
                settings,
                file_name=upload.file_name,
                actor=_actor(),
                write=True,
                report=report,
                max_rows=_max_rows(),
            ).run(expected=form.expected())
        db.session.commit()
    except PreviewOutdated:
        db.session.rollback()
        report_path.unlink(missing_ok=True)
        return _render_preview(upload, status=409, outdated=True)
    except (UnreadableFile, TooManyPending) as error:
        db.session.rollback()
        report_path.unlink(missing_ok=True)
        flash(f"Nothing was imported. {error.message}", "error")
        return back
    except ValidationFailed as error:
        db.session.rollback()
        report_path.unlink(missing_ok=True)
        flash(f"Nothing was imported. {error.message}", "error")
        return back
    except IntegrityError:
        db.session.rollback()
        report_path.unlink(missing_ok=True)
        flash(
            "Nothing was imported: some of these contacts were added by someone else while the "
            "import ran. Check the preview again, then import.",
            "error",
        )
        return back
    report_path.replace(upload.report_path)
    upload.result = {
        **summary.expected(),
        "rows": summary.rows,
        "new_organisations": summary.new_organisations,
        "emails_sent": summary.emails_sent,
        "emails_held": summary.emails_held,
        "status": settings.status.value,
        "update_existing": settings.update_existing,
    }
    upload.forget_file()
    upload.save()
    return redirect(url_for(".import_preview", token=token))


@bp.get("/imports/<token>/rejected.csv")
@requires(Role.EDITOR)
def import_rejected(token: str) -> Response:
    upload = _upload_or_404(token)
    if not upload.has_report:
        abort(404)
    stem = upload.file_name.rsplit(".", 1)[0] or "import"
    response = send_file(
        upload.report_path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"{stem}-rejected-rows.csv",
        max_age=0,
    )
    response.headers.update(PRIVATE_HEADERS)
    return response


@bp.post("/imports/<token>/discard")
@requires(Role.EDITOR)
def import_discard(token: str) -> Response:
    upload = _upload_or_404(token)
    uploads.discard(upload)
    flash(f"{upload.file_name} was deleted from the server.", "success")
    return redirect(url_for(".imports"))


# --- Personal-data requests ---------------------------------------------------------------


def _contact_or_404(contact_id: int) -> Contact:
    if contact_id > MAX_ID:
        abort(404)
    return db.get_or_404(Contact, contact_id)


@bp.get("/contacts/<int:contact_id>/personal-data.json")
@requires(Role.ADMIN)
def contact_data(contact_id: int) -> Response:
    """Everything stored about a contact, as the self-service download gives it."""
    document = personal_data.data_for_request(_contact_or_404(contact_id))
    db.session.commit()
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers=_attachment(f"jeg-contact-{contact_id}-personal-data.json"),
    )


@bp.route("/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
@requires(Role.ADMIN)
def erase_contact(contact_id: int) -> Response | tuple[str, int]:
    contact = _contact_or_404(contact_id)
    back = redirect(url_for("directory.contact", contact_id=contact_id))
    if contact.status is ContactStatus.ERASED:
        flash("This contact's data was already erased.", "info")
        return back
    form = EraseForm()
    if form.validate_on_submit():
        personal_data.erase_on_request(contact, current_user.email)
        db.session.commit()
        flash(
            "The contact's personal data was erased. Only a fingerprint of the address is kept, "
            "so no import can add it again.",
            "success",
        )
        return back
    page = render_template("exports/erase_contact.html", contact=contact, form=form)
    return page, 400 if form.is_submitted() else 200
