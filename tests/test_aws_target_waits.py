"""Waits on `aws` follow each job's own time limit, not the provider's default number of polls."""

import copy
import math

import pytest
from airflow.sdk.exceptions import TaskDeferred

from aws_kit import REGION, context, mocked_aws, seed_s3
from gated_ml import job_requests as jr
from gated_ml.targets import aws_waits
from gated_ml.targets.aws_operators import ReattachingTrainingOperator, ReattachingTransformOperator

CODE = "s3://gated-ml-lake/vertebral_column/code/abc/sourcedir.tar.gz"
P = aws_waits.PROVISIONING_SECONDS


def _training(runtime, wait=None):
    stop = {"MaxRuntimeInSeconds": runtime, **({"MaxWaitTimeInSeconds": wait} if wait else {})}
    return {"StoppingCondition": stop}


def test_training_waits_its_max_runtime_or_its_spot_max_wait():
    assert aws_waits.training(_training(3600), 30) == aws_waits.Wait(3600 + P, 30)
    assert aws_waits.training(_training(3600, 7200), 30).seconds == 7200 + P
    assert aws_waits.training(_training(3600), 30).max_attempts == math.ceil((3600 + P) / 30) + 1


def test_tuning_waits_its_rounds_of_parallel_jobs_or_its_own_limit():
    tuning = {
        "HyperParameterTuningJobConfig": {"ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 3}},
        "TrainingJobDefinition": _training(600),
    }
    assert aws_waits.tuning(tuning, 60).seconds == 4 * (600 + P)  # 10 jobs, 3 at a time: 4 rounds
    tuning["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 1800
    assert aws_waits.tuning(tuning, 60).seconds == 1800 + P


def test_transform_waits_one_timeout_with_retries_per_mini_batch():
    request = {"MaxPayloadInMB": 6, "TransformResources": {"InstanceCount": 1}}
    assert aws_waits.transform(request, 0, 30).seconds == P + 600 * 4  # SageMaker's defaults: 600 s, 3 retries
    assert aws_waits.transform(request, 13 * aws_waits.MB, 30).seconds == P + 3 * 600 * 4  # 13 MB in 6 MB payloads: 3 calls
    request = {**request, "TransformResources": {"InstanceCount": 3}, "ModelClientConfig": {"InvocationsTimeoutInSeconds": 60, "InvocationsMaxRetries": 0}}
    assert aws_waits.transform(request, 13 * aws_waits.MB, 30).seconds == P + 60  # shared by 3 instances: one call each


def test_glue_waits_its_timeout_in_minutes():
    assert aws_waits.glue({"Timeout": 60}, 60) == aws_waits.Wait(3600 + aws_waits.GLUE_START_SECONDS, 60)
    assert aws_waits.glue({}, 60).seconds == 2880 * 60 + aws_waits.GLUE_START_SECONDS  # Glue's default Timeout


def test_endpoint_waits_the_slowest_variants_download_and_health_check():
    config = {"ProductionVariants": [{"ModelDataDownloadTimeoutInSeconds": 600, "ContainerStartupHealthCheckTimeoutInSeconds": 300}, {}]}
    assert aws_waits.endpoint(config, 30).seconds == P + 2 * aws_waits.ENDPOINT_STEP_MAX  # the second variant sets none: the maxima
    config["ProductionVariants"].pop()
    assert aws_waits.endpoint(config, 30).seconds == P + 900


def test_a_poll_interval_below_one_second_is_refused():
    with pytest.raises(ValueError, match="poll_seconds"):
        aws_waits.training(_training(60), 0)


def test_the_spec_s_max_runtime_reaches_the_training_wait(spec, env, run):
    request = jr.training_job(spec, env, run, CODE)
    assert aws_waits.training(request, 30).seconds == spec.training.max_runtime_seconds + P


def test_a_deferred_training_job_polls_as_long_as_its_limit_not_the_providers_60_polls(monkeypatch, spec, env, run):
    from moto.sagemaker.models import FakeTrainingJob

    original = FakeTrainingJob.__init__

    def running(self, *args, **kwargs):  # moto completes a job at creation; this one runs
        original(self, *args, **kwargs)
        self.training_job_status = "InProgress"

    monkeypatch.setattr(FakeTrainingJob, "__init__", running)
    with mocked_aws(monkeypatch):
        request = jr.training_job(spec, env, run, CODE)
        seed_s3(CODE, *(c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]))
        operator = ReattachingTrainingOperator(
            task_id="train", config=copy.deepcopy(request), print_log=False, deferrable=True, check_interval=30, aws_conn_id=None, region_name=REGION
        )
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context())
    expected = aws_waits.training(request, 30)
    assert deferred.value.trigger.attempts == expected.max_attempts > 60
    assert deferred.value.timeout.total_seconds() == expected.seconds


def test_a_transform_wait_counts_the_input_it_will_read(monkeypatch, spec, env, run):
    with mocked_aws(monkeypatch):
        import boto3

        request = jr.transform_job(spec, env, run, "m")
        uri = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        seed_s3(uri)
        bucket, _, key = uri[5:].partition("/")
        boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key + "big.csv", Body=b"0" * (13 * aws_waits.MB))
        operator = ReattachingTransformOperator(
            task_id="transform", config={"Transform": request}, check_if_model_exists=False, check_interval=30, aws_conn_id=None, region_name=REGION
        )
        wait = operator.wait_for(context())
    assert wait == aws_waits.transform(request, 13 * aws_waits.MB + 4, 30) and wait.seconds == P + 3 * 600 * 4


def test_a_deferred_tuning_job_polls_for_its_rounds_not_the_triggers_480_polls(monkeypatch, spec, env, run):
    from gated_ml.targets.aws_operators import ReattachingTuningOperator

    with mocked_aws(monkeypatch):
        request = jr.tuning_job(spec, env, run, CODE)
        seed_s3(CODE, *(c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["TrainingJobDefinition"]["InputDataConfig"]))
        operator = ReattachingTuningOperator(
            task_id="tune", config=copy.deepcopy(request), deferrable=True, check_interval=5, aws_conn_id=None, region_name=REGION
        )
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context())
    expected = aws_waits.tuning(request, 5)
    assert deferred.value.trigger.attempts == expected.max_attempts != 480
    assert deferred.value.timeout.total_seconds() == expected.seconds
