"""The back office's front page: who is in the community, at a glance."""

from flask import Blueprint, render_template

from jeg_contacts.dashboard.charts import dashboard_charts
from jeg_contacts.dashboard.services import dashboard_figures
from jeg_contacts.mailer import external_url

bp = Blueprint("dashboard", __name__, url_prefix="/admin")


@bp.get("")
def index() -> str:
    figures = dashboard_figures()
    return render_template(
        "dashboard/index.html",
        figures=figures,
        charts=dashboard_charts(figures) if figures.contacts else [],
        signup_url=external_url("signup.signup"),
    )
