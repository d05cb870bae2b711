"""``EvaluateModelOperator``: the project's evaluation step, usable in any DAG.

Computes the test-set metrics of a batch transform's output with :mod:`sklearn.metrics`
(see :mod:`gated_ml.evaluation.metrics`), writes the report JSON under
``evaluation/ds=…/`` and fails the task (no retry) if the model misses the spec's
thresholds, so nothing downstream (deployment) runs.
"""

from __future__ import annotations

from typing import Any, Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class EvaluateModelOperator(BaseOperator):
    template_fields: Sequence[str] = ("transform_output", "model")
    ui_color = "#e8f4ea"

    def __init__(self, *, pipeline: str, transform_output: Any, model: Any, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.transform_output = transform_output
        self.model = model

    def execute(self, context):
        from gated_ml import stages
        from gated_ml.job_requests import Run
        from gated_ml.spec import load_pipeline

        spec = load_pipeline(self.pipeline)
        run = Run.from_context(context)
        try:
            return stages.evaluate(spec, stages.local_environment(), run, self.transform_output["output_uris"], self.model)
        except (stages.ModelGateFailed, stages.StageError) as e:
            raise AirflowFailException(str(e)) from None
