"""/metrics for Prometheus: off (404) unless METRICS_TOKEN is set, then only with
`Authorization: Bearer <METRICS_TOKEN>`."""

import hmac

from flask import Blueprint, Response, abort, current_app, request

from jeg_contacts.operations import metrics

bp = Blueprint("operations", __name__)


def _authorised(token: str) -> bool:
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    # Compared in constant time, so the answer's timing does not tell how much was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        offered.strip().encode(), token.encode()
    )


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)
    if not _authorised(token):
        return Response(
            "Unauthorised\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    response = Response(metrics.render(metrics.collect()), content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
