"""The `aws` target's run-time pieces: the account environment and slim job results.

Nothing here runs at DAG parse time. The bucket and the role ARNs come from Airflow
Variables (``gated_ml_bucket``, ``gated_ml_sagemaker_role_arn``,
``gated_ml_glue_role_arn``), the region from the AWS connection (``[gated_ml]
aws_conn_id``), the XGBoost image URI from the ``sagemaker`` SDK for that region.
After each provider operator, a small task reads back only what downstream needs (job
name, artifact URI, final metrics) instead of passing whole Describe* responses on.
"""

from __future__ import annotations

from gated_ml import job_requests as jr
from gated_ml import settings, storage
from gated_ml.spec import PipelineSpec


def _sagemaker():
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    return SageMakerHook(aws_conn_id=settings.aws_conn_id())


def region() -> str:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=settings.aws_conn_id(), client_type="sts").region_name or settings.region()


def environment() -> jr.Environment:
    from airflow.sdk import Variable
    from sagemaker.core import image_uris

    return jr.Environment(
        bucket=Variable.get("gated_ml_bucket"),
        role_arn=Variable.get("gated_ml_sagemaker_role_arn"),
        glue_role_arn=Variable.get("gated_ml_glue_role_arn"),
        image_uri=image_uris.retrieve("xgboost", region=region(), version=jr.XGBOOST_FRAMEWORK_VERSION),
    )


def training_result(spec: PipelineSpec, job_name: str) -> dict:
    d = _sagemaker().describe_training_job(job_name)
    metrics = {m["MetricName"]: m["Value"] for m in d.get("FinalMetricDataList", [])}
    return {
        "job_name": job_name,
        "model_data": d["ModelArtifacts"]["S3ModelArtifacts"],
        "objective": {"name": spec.tuning.objective_metric, "value": metrics.get(spec.tuning.objective_metric)},
        "hyperparameters": {k: v for k, v in d.get("HyperParameters", {}).items() if k in spec.training.hyperparameters},
    }


def tuning_result(spec: PipelineSpec, request: dict) -> dict:
    """The best training job of a tuning job; its artifact follows SageMaker's output layout."""
    name = request["HyperParameterTuningJobName"]
    d = _sagemaker().describe_tuning_job(name)
    best = d["BestTrainingJob"]
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    output = request["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    return {
        "tuning_job": name,
        "job_name": best["TrainingJobName"],
        "model_data": f"{output}/{best['TrainingJobName']}/output/model.tar.gz",
        "objective": {"name": spec.tuning.objective_metric, "value": objective.get("Value") if objective.get("MetricName") == spec.tuning.objective_metric else None},
        "hyperparameters": best.get("TunedHyperParameters", {}),
        "trials": d.get("TrainingJobStatusCounters", {}),
    }


def transform_result(request: dict) -> dict:
    """Output objects of a CSV transform: ``<S3OutputPath>/<input file>.out`` for every input file."""
    inputs = storage.list_uris(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    out = request["TransformOutput"]["S3OutputPath"].rstrip("/")
    return {"job_name": request["TransformJobName"], "output_uris": [f"{out}/{u.rsplit('/', 1)[-1]}.out" for u in inputs]}


def runtime_client():
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=settings.aws_conn_id(), client_type="sagemaker-runtime").conn


_DESCRIBE = {
    "train": ("describe_training_job", "TrainingJobStatus"),
    "tune": ("describe_tuning_job", "HyperParameterTuningJobStatus"),
    "transform": ("describe_transform_job", "TransformJobStatus"),
}


def attempt_run(spec: PipelineSpec, run: jr.Run, stage: str, kind: str, max_len: int = 63) -> jr.Run:
    """The run whose job this attempt should use: an earlier try's if its job still runs or completed.

    Builders are pure, so building the request with that earlier ``Run`` gives exactly the
    request that try sent; the re-attaching operators then wait for or reuse its job.
    """
    from botocore.exceptions import ClientError

    method, key = _DESCRIBE[kind]
    hook = _sagemaker()
    for try_number in range(run.try_number - 1, 0, -1):
        earlier = jr.Run(run.logical_date, try_number)
        try:
            status = getattr(hook, method)(earlier.name(spec, stage, max_len))[key]
        except ClientError:
            continue
        if status in ("InProgress", "Stopping", "Completed"):
            return earlier
    return run
