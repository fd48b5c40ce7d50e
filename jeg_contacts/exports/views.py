"""Back office: exporting contact lists in the formats people use."""

from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from jeg_contacts.audiences.services import (
    ContactFilter,
    all_topics,
    describe_filter,
    normalise_sort,
)
from jeg_contacts.contacts.models import ContactStatus, StakeholderType
from jeg_contacts.countries import country_groups
from jeg_contacts.downloads import attachment_headers
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.exports import services, writers
from jeg_contacts.extensions import db

bp = Blueprint("exports", __name__, url_prefix="/admin")


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
    body = writers.export_body(export)
    return Response(
        stream_with_context(body),
        mimetype=export.format.mimetype,
        headers=attachment_headers(export.filename),
    )
