"""Training and tuning: the requests, their results read from the Describe answers, the model choice.

The results are read the same way on every target, from fields AWS itself returns: final
metrics from ``FinalMetricDataList``, the tuning job's best training job from
``BestTrainingJob`` with its artifact at SageMaker's output layout
(``<S3OutputPath>/<job>/output/model.tar.gz``), the objective by the metric name the
request defines.
"""

from __future__ import annotations

import logging

from gated_ml import job_requests as jr
from gated_ml import run_params
from gated_ml.errors import JobFailed, StageError
from gated_ml.job_requests import Environment, Run
from gated_ml.spec import PipelineSpec
from gated_ml.steps import Step

log = logging.getLogger(__name__)


def training_request(spec: PipelineSpec, env: Environment, run: Run, code: dict) -> dict:
    return jr.training_job(spec, env, run, code["sourcedir_uri"])


def _not_completed(describe: dict) -> str:
    """Why a training job did not complete, from its Describe answer (a stopped job has no FailureReason)."""
    status, secondary = describe["TrainingJobStatus"], describe.get("SecondaryStatus")
    if secondary == "MaxRuntimeExceeded":
        limit = describe.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        return f"{status} (MaxRuntimeExceeded): it ran past StoppingCondition.MaxRuntimeInSeconds={limit}; raise the spec's training.max_runtime_seconds"
    return f"{status} ({secondary}): {describe.get('FailureReason')}"


def training_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict, **inputs) -> dict:
    if describe["TrainingJobStatus"] != "Completed":
        raise JobFailed(f"training job {describe['TrainingJobName']} {_not_completed(describe)}")
    metric = spec.tuning.objective_metric
    return {
        "job_name": describe["TrainingJobName"],
        "model_data": describe["ModelArtifacts"]["S3ModelArtifacts"],
        "objective": {"name": metric, "value": jr.final_metric(describe, metric)},
        "hyperparameters": {k: v for k, v in describe.get("HyperParameters", {}).items() if k in spec.training.hyperparameters},
    }


TRAIN = Step("train", training_request, training_result)


def tuning_request(spec: PipelineSpec, env: Environment, run: Run, code: dict) -> dict | None:
    """The tuning job, or ``None`` when the run's ``skip_tuning`` param is set (the training job alone is the candidate)."""
    if run_params.value(spec, run, run_params.SKIP_TUNING):
        log.info("no tuning job: the run's param %s is true", run_params.SKIP_TUNING)
        return None
    return jr.tuning_job(spec, env, run, code["sourcedir_uri"])


def tuning_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict, **inputs) -> dict:
    name = request["HyperParameterTuningJobName"]
    if describe["HyperParameterTuningJobStatus"] != "Completed":
        raise JobFailed(f"tuning job {name} {describe['HyperParameterTuningJobStatus']}: {describe.get('FailureReason')}")
    best = describe["BestTrainingJob"]
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    wanted = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    output = request["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    return {
        "tuning_job": name,
        "job_name": best["TrainingJobName"],
        "model_data": f"{output}/{best['TrainingJobName']}/output/model.tar.gz",
        "objective": {"name": wanted, "value": objective.get("Value") if objective.get("MetricName") == wanted else None},
        "hyperparameters": best.get("TunedHyperParameters", {}),
        "trials": describe.get("TrainingJobStatusCounters", {}),
    }


# optional: a run with skip_tuning has no tuning job, and select_model gets None for it
TUNE = Step("tune", tuning_request, tuning_result, optional=True)


def select_model(spec: PipelineSpec, trained: dict, tuned: dict | None = None) -> dict:
    """The better of the default-hyperparameter job and the tuning's best, by the objective metric (the training job without a tuning result)."""
    sign = 1 if spec.tuning.objective_type == "Maximize" else -1
    candidates = [c for c in (trained, tuned) if c and c["objective"]["value"] is not None]
    if not candidates:
        raise StageError(f"no training job reported {spec.tuning.objective_metric}")
    best = max(candidates, key=lambda c: sign * c["objective"]["value"])
    log.info("selected %s (%s=%.4f)", best["job_name"], best["objective"]["name"], best["objective"]["value"])
    return best
