"""Back office: exporting and importing contact lists, and staff-handled data requests."""

import json
from contextlib import closing, suppress
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from jeg_contacts.audiences.services import (
    ContactFilter,
    all_topics,
    describe_filter,
    normalise_sort,
)
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import Contact, ContactStatus, StakeholderType
from jeg_contacts.countries import country_groups
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.exports import jobs, limits, personal_data, services, uploads
from jeg_contacts.exports.forms import CommitForm, EraseForm, ImportSettingsForm, UploadForm
from jeg_contacts.exports.imports import Outcome, import_basis
from jeg_contacts.exports.mapping import (
    ImportField,
    ImportSettings,
    mapping_problems,
    suggest_mapping,
)
from jeg_contacts.exports.reading import Table, UnreadableFile, megabytes
from jeg_contacts.extensions import MAX_ID, db

bp = Blueprint("exports", __name__, url_prefix="/admin")

SAMPLE_ROWS = 3
# Personal data: not kept by browsers or proxies, and never reinterpreted as another type.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', **PRIVATE_HEADERS}


# --- Export -------------------------------------------------------------------------------


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
        country_groups=country_groups("en"),
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
    upload = jobs.load(token, current_user.id)
    if upload is None:
        abort(404)
    return upload


def _render_upload(form: UploadForm, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "exports/imports.html",
        form=form,
        max_bytes=megabytes(limits.max_upload_bytes()),
        max_rows=limits.max_rows(),
        recent=[(upload, jobs.current(upload)) for upload in jobs.recent(current_user.id)],
        fields=list(ImportField),
    )
    return page, status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    if request.endpoint != "exports.imports":
        return render_template("errors/http.html", error=error), 413
    form = UploadForm(meta={"csrf": False}, formdata=None)
    form.file.errors = [
        f"The file is larger than {megabytes(limits.max_upload_bytes())}, the most that can be "
        "imported at once. Split it into smaller files, or save it as XLSX, which is smaller."
    ]
    return _render_upload(form, 413)


def _start_check(upload: uploads.Upload, table: Table) -> None:
    """Start the dry run, unless the columns must be chosen first (the preview says which)."""
    settings = upload.import_settings(table.header, suggest_mapping(table.header))
    if mapping_problems(settings, table.header):
        return
    try:
        jobs.start_check(upload)
    except jobs.JobRunning:
        flash("This file is being checked or imported already; wait until that is done.", "error")
    except jobs.AlreadyImported:
        pass
    db.session.commit()


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
            file.stream, file.filename, current_user.id, max_bytes=limits.max_upload_bytes()
        )
    except uploads.UploadTooLarge:
        return too_large(RequestEntityTooLarge())
    upload.encoding, upload.delimiter = form.encoding.data, form.delimiter.data
    try:
        table = upload.open_table()
    except UnreadableFile as error:
        uploads.discard(upload)
        form.file.errors = [f"{upload.file_name}: {error.message}"]
        return _render_upload(form, 400)
    upload.save()
    _start_check(upload, table)
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
            "basis": settings.basis,
            "existing": "update" if settings.update_existing else "skip",
            "default_type": settings.default_type,
            "default_language": settings.default_language,
            "default_topics": [str(topic_id) for topic_id in settings.default_topic_ids],
        },
    )


def _render_preview(
    upload: uploads.Upload,
    job: jobs.Job | None,
    *,
    form: ImportSettingsForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The file as read, the column mapping, and the latest dry run if it is still the one
    for these settings; with what became of the latest check or import."""
    context: dict[str, Any] = {
        "upload": upload,
        "job": job,
        "kinds": jobs.Kind,
        "states": jobs.State,
        "fields": list(ImportField),
        "outcomes": Outcome,
        "pending_limit": limits.max_pending(),
    }
    try:
        table = upload.open_table()
    except UnreadableFile as error:
        form = form or _settings_form(upload, ImportSettings(mapping=()))
        return render_template(
            "exports/import_preview.html", form=form, table=None, error=error.message, **context
        ), 400
    settings = upload.import_settings(table.header, suggest_mapping(table.header))
    form = form or _settings_form(upload, settings)
    problems = mapping_problems(settings, table.header)
    found = None if problems else jobs.preview(upload, settings)
    failed_check = (
        job is not None
        and job.kind is jobs.Kind.CHECK
        and job.state is jobs.State.FAILED
        and found is None
        and not problems
    )
    page = render_template(
        "exports/import_preview.html",
        form=form,
        table=table,
        settings=settings,
        samples=_samples(table),
        problems=problems,
        summary=found.summary if found else None,
        checked_at=found.checked_at if found else None,
        error=job.error if failed_check else None,
        commit_form=CommitForm(formdata=None, data=found.summary.expected() if found else {}),
        **context,
    )
    return page, 400 if failed_check else status


def _settings_from(form: ImportSettingsForm, table: Table) -> ImportSettings:
    fields = {member.value for member in ImportField}
    mapping = []
    for index in range(len(table.header)):
        chosen = request.form.get(f"column-{index}", "")
        mapping.append(chosen if chosen in fields else "")
    return ImportSettings(
        mapping=tuple(mapping),
        status=ContactStatus(form.status.data),
        # Kept only for an active import: a pending one records no statement.
        basis=" ".join((form.basis.data or "").split()) if form.status.data == "active" else "",
        update_existing=form.existing.data == "update",
        default_type=form.default_type.data or "",
        default_language=form.default_language.data,
        default_topic_ids=tuple(int(value) for value in form.default_topics.data or ()),
    )


def _basis_accepted(form: ImportSettingsForm) -> bool:
    """Whether the reason given for an active import passes the import's rule; if not, the
    form says why, before anything is saved."""
    try:
        import_basis(
            ImportSettings(
                mapping=(), status=ContactStatus(form.status.data), basis=form.basis.data or ""
            )
        )
    except ValidationFailed as error:
        form.basis.errors = [*form.basis.errors, error.message]
        return False
    return True


def _preview_url(token: str, anchor: str | None = None) -> str:
    return url_for(".import_preview", token=token, _anchor=anchor)


@bp.route("/imports/<token>", methods=["GET", "POST"])
@requires(Role.EDITOR)
def import_preview(token: str) -> Response | tuple[str, int]:
    """One upload, whatever its state: the dry run's progress or its preview (how the file is
    read, the column mapping, what an import would do), the import's progress or result."""
    upload = _upload_or_404(token)
    if upload.result is not None:
        return render_template("exports/import_done.html", upload=upload, result=upload.result), 200
    job = jobs.current(upload)
    if job is not None and job.running:
        if request.method == "POST":
            flash("The settings were not changed: this file is being checked or imported.", "error")
            return redirect(_preview_url(token))
        return render_template(
            "exports/import_progress.html",
            upload=upload,
            job=job,
            kinds=jobs.Kind,
            status_url=url_for(".import_status", token=token),
        ), 200
    if request.method == "GET":
        return _render_preview(upload, job)
    form = ImportSettingsForm(topics=all_topics())
    if not (form.validate() and _basis_accepted(form)):
        return _render_preview(upload, job, form=form, status=400)
    reading_changed = (form.encoding.data, form.delimiter.data) != (
        upload.encoding,
        upload.delimiter,
    )
    upload.encoding, upload.delimiter = form.encoding.data, form.delimiter.data
    try:
        table = upload.open_table()
    except UnreadableFile:
        upload.save()
        return redirect(_preview_url(token))
    settings = _settings_from(form, table)
    if reading_changed:
        # The columns may come out differently: map them afresh from their names.
        settings = replace(settings, mapping=())
    upload.remember(settings)
    upload.save()
    _start_check(upload, table)
    return redirect(_preview_url(token, "preview"))


@bp.post("/imports/<token>/check")
@requires(Role.EDITOR)
def import_check(token: str) -> Response:
    """Check the rows again with the saved settings (after an interruption, for instance)."""
    upload = _upload_or_404(token)
    if upload.result is None:
        with suppress(UnreadableFile):  # the preview says why
            _start_check(upload, upload.open_table())
    return redirect(_preview_url(token, "preview"))


@bp.get("/imports/<token>/status")
@requires(Role.EDITOR)
def import_status(token: str) -> Response:
    """The progress of the upload's check or import, for its page to follow."""
    upload = _upload_or_404(token)
    job = jobs.current(upload)
    status: dict[str, Any] = job.status() if job is not None else {"finished": True}
    status["url"] = _preview_url(token, None if upload.result or job is None else "preview")
    response = jsonify(status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/imports/<token>/commit")
@requires(Role.EDITOR)
def import_commit(token: str) -> Response:
    upload = _upload_or_404(token)
    back = redirect(_preview_url(token))
    if upload.result is not None:
        return back
    form = CommitForm()
    if not form.validate():
        flash("The form was incomplete; nothing was imported. Check the preview again.", "error")
        return back
    try:
        jobs.start_import(upload, form.expected())
    except jobs.JobRunning:
        flash("This file is being imported already; here is how far it got.", "info")
    except jobs.AlreadyImported:
        pass
    db.session.commit()
    return back


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
    try:
        jobs.discard(upload)
    except jobs.JobRunning:
        flash("This file is being checked or imported; delete it once that is done.", "error")
        return redirect(_preview_url(token))
    db.session.commit()
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
