"""SageMaker jobs moto records but does not run: training, tuning and batch transform, by the local runners.

After moto accepted a ``Create*Job`` call, :func:`start` sets the job ``InProgress`` (moto makes
it ``Completed`` at creation) and runs it in the background: inputs staged from moto's S3,
the local runner (:mod:`gated_ml.local.training`, :mod:`~gated_ml.local.tuning`,
:mod:`~gated_ml.local.transform`) on the very request the client sent, outputs uploaded,
then the Describe fields and, last, the status.
"""

from __future__ import annotations

import copy
import logging

from gated_ml.emulated_aws import background, moto_backends, staging
from gated_ml.local.control_plane import ControlPlane, now

log = logging.getLogger(__name__)


# --- training -----------------------------------------------------------------------------
def _training_inputs(request: dict) -> list[str]:
    channels = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in request.get("InputDataConfig", [])]
    code = request.get("HyperParameters", {}).get("sagemaker_submit_directory")
    return channels + ([code] if code and code.startswith("s3://") else [])


def _publish_training(describe: dict) -> None:
    artifact = (describe.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if artifact:
        staging.upload(artifact)
        output = artifact.rsplit("/", 1)[0] + "/output.tar.gz"
        from gated_ml.lake import local_path

        if local_path(output).is_file():
            staging.upload(output)


def start_training(region: str, request: dict, fail_reason: str | None = None) -> None:
    job = moto_backends.sagemaker(region).training_jobs[request["TrainingJobName"]]
    job.algorithm_specification = copy.deepcopy(request["AlgorithmSpecification"])  # moto replaced its MetricDefinitions
    job.training_job_status, job.secondary_status = "InProgress", "Starting"
    job.final_metric_data_list, job.model_artifacts, job.training_end_time = [], None, None

    def finish(status: str, reason: str | None = None, describe: dict | None = None) -> None:
        describe = describe or {}
        job.final_metric_data_list = describe.get("FinalMetricDataList", [])
        job.model_artifacts = describe.get("ModelArtifacts")
        job.failure_reason = reason
        job.training_end_time = job.last_modified_time = now()
        job.secondary_status = status
        job.training_job_status = status  # last

    def work():
        if fail_reason:
            return finish("Failed", fail_reason)
        staging.stage_in_all(_training_inputs(request))
        job.secondary_status = "Training"
        from gated_ml.local.training import run_training_job

        describe = run_training_job(request, ControlPlane())
        status = background.ended(job.training_job_name, describe["TrainingJobStatus"])
        if status == "Stopped":
            return finish(status, "Stopped by StopTrainingJob", {k: v for k, v in describe.items() if k == "FinalMetricDataList"})
        if status == "Completed":
            _publish_training(describe)
        finish(status, describe.get("FailureReason"), describe)

    background.start(job.training_job_name, work, lambda reason: finish(background.ended(job.training_job_name, "Failed"), reason))


# --- tuning -------------------------------------------------------------------------------
def start_tuning(region: str, request: dict, fail_reason: str | None = None) -> None:
    backend = moto_backends.sagemaker(region)
    job = backend.hyper_parameter_tuning_jobs[request["HyperParameterTuningJobName"]]
    job.hyper_parameter_tuning_job_status = "InProgress"
    job.best_training_job = job.OverallBestTrainingJob = job.hyper_parameter_tuning_end_time = None
    job.training_job_status_counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    job.objective_status_counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    job.tuning_job_completion_details = job.consumed_resources = None

    def finish(status: str, reason: str = "", describe: dict | None = None) -> None:
        describe = describe or {}
        trials = describe.get("TrainingJobs", [])
        done = [t for t in trials if t["TrainingJobStatus"] == "Completed"]
        job.training_job_status_counters = {**job.training_job_status_counters, "Completed": len(done), "NonRetryableError": len(trials) - len(done)}
        scored = [t for t in done if t.get("FinalHyperParameterTuningJobObjectiveMetric")]
        job.objective_status_counters = {"Succeeded": len(scored), "Pending": 0, "Failed": len(trials) - len(scored)}
        best = describe.get("BestTrainingJob")
        job.best_training_job = job.OverallBestTrainingJob = _best_summary(job, best) if best else None
        job.failure_reason = reason
        job.hyper_parameter_tuning_end_time = job.last_modified_time = now()
        job.hyper_parameter_tuning_job_status = status  # last

    def work():
        if fail_reason:
            return finish("Failed", fail_reason)
        definition = request["TrainingJobDefinition"]
        staging.stage_in_all(_training_inputs({**definition, "HyperParameters": definition.get("StaticHyperParameters", {})}))
        from gated_ml.local.tuning import run_tuning_job

        describe = run_tuning_job(request, ControlPlane())
        for trial in describe.get("TrainingJobs", []):
            _publish_training(trial)
            _register_trial(backend, request, trial)
        finish(background.ended(job.hyper_parameter_tuning_job_name, describe["HyperParameterTuningJobStatus"]), describe.get("FailureReason", ""), describe)

    background.start(job.hyper_parameter_tuning_job_name, work, lambda reason: finish(background.ended(job.hyper_parameter_tuning_job_name, "Failed"), reason))


def _best_summary(job, best: dict) -> dict:
    """``BestTrainingJob`` as SageMaker answers it (a ``HyperParameterTrainingJobSummary``)."""
    summary = {
        k: best[k] for k in ("TrainingJobName", "TrainingJobStatus", "TunedHyperParameters", "FinalHyperParameterTuningJobObjectiveMetric") if best.get(k)
    }
    return {
        **summary,
        "TrainingJobArn": job.arn.replace(f"hyper-parameter-tuning-job/{job.hyper_parameter_tuning_job_name}", f"training-job/{best['TrainingJobName']}"),
        "TuningJobName": job.hyper_parameter_tuning_job_name,
        "CreationTime": job.creation_time,
        "ObjectiveStatus": "Succeeded",
    }


def _register_trial(backend, request: dict, trial: dict) -> None:
    """A tuning trial is a training job of the account, as on SageMaker (``DescribeTrainingJob`` answers it)."""
    from moto.sagemaker.models import FakeTrainingJob

    definition = request["TrainingJobDefinition"]
    fake = FakeTrainingJob(
        account_id=moto_backends.ACCOUNT,
        region_name=backend.region_name,
        training_job_name=trial["TrainingJobName"],
        hyper_parameters={**definition.get("StaticHyperParameters", {}), **trial["TunedHyperParameters"]},
        algorithm_specification=copy.deepcopy(definition["AlgorithmSpecification"]),
        role_arn=definition["RoleArn"],
        input_data_config=definition.get("InputDataConfig", []),
        output_data_config=definition["OutputDataConfig"],
        resource_config=definition["ResourceConfig"],
        vpc_config=definition.get("VpcConfig"),
        stopping_condition=definition["StoppingCondition"],
        tags=[],
        enable_network_isolation=definition.get("EnableNetworkIsolation", False),
        enable_inter_container_traffic_encryption=definition.get("EnableInterContainerTrafficEncryption", False),
        enable_managed_spot_training=definition.get("EnableManagedSpotTraining", False),
        checkpoint_config=None,
        debug_hook_config=None,
        debug_rule_configurations=None,
        tensor_board_output_config=None,
        experiment_config=None,
    )
    fake.algorithm_specification = copy.deepcopy(definition["AlgorithmSpecification"])
    metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric")
    fake.final_metric_data_list = [{"MetricName": metric["MetricName"], "Value": metric["Value"], "Timestamp": now()}] if metric else []
    fake.model_artifacts = trial.get("ModelArtifacts")
    fake.failure_reason = trial.get("FailureReason")
    fake.training_job_status = fake.secondary_status = trial["TrainingJobStatus"]
    backend.training_jobs[trial["TrainingJobName"]] = fake


# --- batch transform ----------------------------------------------------------------------
def start_transform(region: str, request: dict, fail_reason: str | None = None) -> None:
    backend = moto_backends.sagemaker(region)
    job = backend.transform_jobs[request["TransformJobName"]]
    job.transform_job_status, job.transform_end_time = "InProgress", None

    def finish(status: str, reason: str = "") -> None:
        job.failure_reason = reason
        job.transform_end_time = job.last_modified_time = now()
        job.transform_job_status = status  # last

    def work():
        if fail_reason:
            return finish("Failed", fail_reason)
        container = backend._models[request["ModelName"]].primary_container
        staging.stage_in_all([container["ModelDataUrl"], container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]])
        staging.stage_in(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        from gated_ml.local.transform import run_transform_job

        output = request["TransformOutput"]["S3OutputPath"]
        before = staging.snapshot(output)
        describe = run_transform_job(request, {"PrimaryContainer": container}, ControlPlane())
        staging.publish_changes(output, before)  # what the job wrote under its S3OutputPath (its Describe names no files)
        finish(background.ended(job.transform_job_name, describe["TransformJobStatus"]), describe.get("FailureReason", ""))

    background.start(job.transform_job_name, work, lambda reason: finish(background.ended(job.transform_job_name, "Failed"), reason))
