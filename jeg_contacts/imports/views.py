"""Back office: importing contact lists (upload, map, dry run, import)."""

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
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from jeg_contacts.audiences.services import (
    all_topics,
)
from jeg_contacts.auth.access import requires
from jeg_contacts.auth.models import Role
from jeg_contacts.contacts.models import ContactStatus
from jeg_contacts.downloads import PRIVATE_HEADERS
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db
from jeg_contacts.imports import jobs, limits, uploads
from jeg_contacts.imports.forms import CommitForm, ImportSettingsForm, UploadForm
from jeg_contacts.imports.mapping import (
    ImportField,
    ImportSettings,
    mapping_problems,
    suggest_mapping,
)
from jeg_contacts.imports.reading import Table, UnreadableFile, megabytes
from jeg_contacts.imports.services import Outcome, import_basis

bp = Blueprint("imports", __name__, url_prefix="/admin")

SAMPLE_ROWS = 3


def _upload_or_404(token: str) -> uploads.Upload:
    upload = jobs.load(token, current_user.id)
    if upload is None:
        abort(404)
    return upload


def _render_upload(form: UploadForm, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "imports/index.html",
        form=form,
        max_bytes=megabytes(limits.max_upload_bytes()),
        max_rows=limits.max_rows(),
        recent=[(upload, jobs.current(upload)) for upload in jobs.recent(current_user.id)],
        fields=list(ImportField),
    )
    return page, status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    if request.endpoint != "imports.index":
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
def index() -> Response | tuple[str, int]:
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
    return redirect(url_for(".preview", token=upload.token))


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
            "imports/import_preview.html", form=form, table=None, error=error.message, **context
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
        "imports/import_preview.html",
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
    return url_for(".preview", token=token, _anchor=anchor)


@bp.route("/imports/<token>", methods=["GET", "POST"])
@requires(Role.EDITOR)
def preview(token: str) -> Response | tuple[str, int]:
    """One upload, whatever its state: the dry run's progress or its preview (how the file is
    read, the column mapping, what an import would do), the import's progress or result."""
    upload = _upload_or_404(token)
    if upload.result is not None:
        return render_template("imports/import_done.html", upload=upload, result=upload.result), 200
    job = jobs.current(upload)
    if job is not None and job.running:
        if request.method == "POST":
            flash("The settings were not changed: this file is being checked or imported.", "error")
            return redirect(_preview_url(token))
        return render_template(
            "imports/import_progress.html",
            upload=upload,
            job=job,
            kinds=jobs.Kind,
            status_url=url_for(".status", token=token),
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
def check(token: str) -> Response:
    """Check the rows again with the saved settings (after an interruption, for instance)."""
    upload = _upload_or_404(token)
    if upload.result is None:
        with suppress(UnreadableFile):  # the preview says why
            _start_check(upload, upload.open_table())
    return redirect(_preview_url(token, "preview"))


@bp.get("/imports/<token>/status")
@requires(Role.EDITOR)
def status(token: str) -> Response:
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
def commit(token: str) -> Response:
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
def rejected(token: str) -> Response:
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
def discard(token: str) -> Response:
    upload = _upload_or_404(token)
    try:
        jobs.discard(upload)
    except jobs.JobRunning:
        flash("This file is being checked or imported; delete it once that is done.", "error")
        return redirect(_preview_url(token))
    db.session.commit()
    flash(f"{upload.file_name} was deleted from the server.", "success")
    return redirect(url_for(".index"))
