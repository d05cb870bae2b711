"""``EvaluateModelOperator``: the project's evaluation step and model gate.

Computes the test-set metrics of a batch transform's output with :mod:`sklearn.metrics`
(binary: the decision threshold chosen on the validation split by the spec's rule;
multiclass; regression), compares with the serving champion, draws the plots, registers
the model with its decision, writes the report under ``evaluation/ds=…/`` and fails the
task (no retry) when the model is rejected, so nothing downstream (deployment) runs.
Its extra link opens the report in the Airflow UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from gated_ml.errors import airflow_outcome

REPORT_ROUTE = "/gated-ml/reports"


class EvaluationReportLink(BaseOperatorLink):
    name = "Evaluation report"

    def get_link(self, operator, *, ti_key) -> str:
        return f"{REPORT_ROUTE}/{ti_key.dag_id}/{ti_key.run_id}"


class EvaluateModelOperator(BaseOperator):
    template_fields: Sequence[str] = ("test_output", "validation_output", "champion_output", "chosen", "model", "code")
    operator_extra_links = (EvaluationReportLink(),)
    ui_color = "#e8f4ea"

    def __init__(self, *, pipeline: str, test_output: Any, validation_output: Any, champion_output: Any, chosen: Any, model: Any, code: Any, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.test_output, self.validation_output, self.champion_output = test_output, validation_output, champion_output
        self.chosen, self.model, self.code = chosen, model, code

    def execute(self, context):
        from gated_ml.evaluation.stage import evaluate
        from gated_ml.job_requests import Run
        from gated_ml.spec import load_pipeline
        from gated_ml.targets import configured

        spec = load_pipeline(self.pipeline)
        model = {**self.chosen, **self.model}
        run = Run.from_context(context)
        return airflow_outcome(evaluate)(
            spec, configured().environment(), run, self.test_output, self.validation_output, self.champion_output, model, self.code
        )
