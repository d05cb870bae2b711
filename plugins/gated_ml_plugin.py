"""The project's Airflow plugin: the evaluation report view and the evaluate task's extra link."""

from airflow.plugins_manager import AirflowPlugin

from gated_ml.evaluation.operator import REPORT_ROUTE, EvaluationReportLink
from gated_ml.ui import app


class GatedMLPlugin(AirflowPlugin):
    name = "gated_ml"
    fastapi_apps = [{"app": app, "url_prefix": REPORT_ROUTE.rsplit("/", 1)[0], "name": "Gated ML reports"}]
    external_views = [
        {
            "name": "Evaluation report",
            "href": REPORT_ROUTE + "/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "gated-ml-evaluation-report",
        }
    ]
    operator_extra_links = [EvaluationReportLink()]
