"""Retries on `aws`: a failed job, model or config gets a fresh name; a running job is re-attached to; the result reads what ran.

The provider's operators run against moto in this process; where a test needs a job that
failed or still runs, it sets the status on moto's backend object (moto completes every job
at creation).
"""

import copy

import pytest
from airflow.sdk.exceptions import TaskDeferred

from aws_kit import REGION, client, context, mocked_aws, sagemaker_backend, seed_s3
from gated_ml import job_requests as jr
from gated_ml.naming import for_try
from gated_ml.stages import training
from gated_ml.targets import aws_waits
from gated_ml.targets.aws import VERBS, AwsTarget
from gated_ml.targets.aws_operators import (
    NAME_XCOM,
    FreshNameModelOperator,
    ReattachingTrainingOperator,
    ReattachingTransformOperator,
    ReattachingTuningOperator,
)

CODE = "s3://gated-ml-lake/vertebral_column/code/abc/sourcedir.tar.gz"
MODEL = "s3://gated-ml-lake/vertebral_column/models/x/output/model.tar.gz"
WAITING = {"aws_conn_id": None, "region_name": REGION, "wait_for_completion": True, "check_interval": 1, "do_xcom_push": False}


@pytest.fixture
def aws(monkeypatch):
    with mocked_aws(monkeypatch):
        yield


def _train(request, deferrable=False):
    return ReattachingTrainingOperator(
        task_id="train", config=copy.deepcopy(request), action_if_job_exists="fail", print_log=False, deferrable=deferrable, **WAITING
    )


def _training_request(spec, env, run):
    request = jr.training_job(spec, env, run, CODE)
    seed_s3(CODE, *(c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]))
    return request


def _training_jobs() -> list[str]:
    return sorted(j["TrainingJobName"] for j in client("sagemaker").list_training_jobs()["TrainingJobSummaries"])


def _fail(job, status="Failed"):
    job.training_job_status, job.failure_reason = status, "AlgorithmError: the container exited 1"  # as SageMaker reports a failure


def _changes_after_the_first_look(monkeypatch, job, change) -> None:
    """``change(job)`` right after the first DescribeTrainingJob of it answered: the operator saw it running, then it changed.

    Deterministic where a timer is not: under load the operator may take longer than any delay
    to look at the job first, and would then see a job that had already ended.
    """
    backend = type(sagemaker_backend())
    original, looked = backend.describe_training_job, []

    def describe(self, training_job_name):
        answer = original(self, training_job_name)  # a snapshot: this answer still says InProgress
        if training_job_name == job.training_job_name and not looked:
            looked.append(True)
            change(job)
        return answer

    monkeypatch.setattr(backend, "describe_training_job", describe)


def _job_exists_with_status(request, status):
    client("sagemaker").create_training_job(**request)
    job = sagemaker_backend().training_jobs[request["TrainingJobName"]]
    if status in ("Failed", "Stopped"):
        _fail(job, status)
    else:
        job.training_job_status = status


def test_a_failed_training_jobs_retry_gets_a_fresh_name_and_succeeds_and_the_result_reads_it(aws, spec, env, run):
    request = _training_request(spec, env, run)
    first = request["TrainingJobName"]
    _job_exists_with_status(request, "Failed")
    ctx = context(try_number=2)
    _train(request).execute(ctx)
    fresh = for_try(first, 2)
    assert ctx["ti"].xcom[NAME_XCOM] == fresh
    sm = client("sagemaker")
    assert sm.describe_training_job(TrainingJobName=fresh)["TrainingJobStatus"] == "Completed"
    assert sm.describe_training_job(TrainingJobName=first)["TrainingJobStatus"] == "Failed"
    ran = AwsTarget.as_ran(VERBS["train"], request, fresh)  # what the result task does with the pushed name
    result = training.training_result(spec, env, run, ran, VERBS["train"].describe(sm, ran))
    assert result["job_name"] == fresh


def test_each_failed_try_is_passed_over_until_a_free_name(aws, spec, env, run):
    request = _training_request(spec, env, run)
    _job_exists_with_status(request, "Failed")
    _job_exists_with_status({**request, "TrainingJobName": for_try(request["TrainingJobName"], 2)}, "Stopped")
    ctx = context(try_number=3)
    _train(request).execute(ctx)
    assert ctx["ti"].xcom[NAME_XCOM] == for_try(request["TrainingJobName"], 3)
    assert len(_training_jobs()) == 3


def test_a_running_job_is_re_attached_to_deferrably_with_attempts_from_its_limit(aws, spec, env, run):
    request = _training_request(spec, env, run)
    _job_exists_with_status(request, "InProgress")
    ctx = context(try_number=2)
    with pytest.raises(TaskDeferred) as deferred:
        _train(request, deferrable=True).execute(ctx)
    trigger = deferred.value.trigger
    assert trigger.job_name == request["TrainingJobName"] and ctx["ti"].xcom[NAME_XCOM] == request["TrainingJobName"]
    assert trigger.attempts == aws_waits.training(request, 1).max_attempts
    assert _training_jobs() == [request["TrainingJobName"]]  # no second job


def test_a_running_job_is_waited_for_when_not_deferrable(aws, spec, env, run, monkeypatch):
    request = _training_request(spec, env, run)
    _job_exists_with_status(request, "InProgress")
    job = sagemaker_backend().training_jobs[request["TrainingJobName"]]
    _changes_after_the_first_look(monkeypatch, job, lambda j: setattr(j, "training_job_status", "Completed"))
    _train(request).execute(context(try_number=2))
    assert _training_jobs() == [request["TrainingJobName"]]


def test_a_running_job_that_then_fails_fails_the_try(aws, spec, env, run, monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    request = _training_request(spec, env, run)
    _job_exists_with_status(request, "InProgress")
    job = sagemaker_backend().training_jobs[request["TrainingJobName"]]
    _changes_after_the_first_look(monkeypatch, job, _fail)
    with pytest.raises(AirflowException, match="AlgorithmError"):
        _train(request).execute(context(try_number=2))
    assert _training_jobs() == [request["TrainingJobName"]]  # it waited for that job; no successor was started


def test_a_completed_job_of_an_earlier_try_is_reused(aws, spec, env, run):
    request = _training_request(spec, env, run)
    client("sagemaker").create_training_job(**request)
    ctx = context(try_number=2)
    assert _train(request).execute(ctx) is None
    assert ctx["ti"].xcom[NAME_XCOM] == request["TrainingJobName"] and _training_jobs() == [request["TrainingJobName"]]


def test_a_first_try_creates_the_job_under_the_requests_name(aws, spec, env, run):
    request = _training_request(spec, env, run)
    ctx = context()
    _train(request).execute(ctx)
    assert ctx["ti"].xcom[NAME_XCOM] == request["TrainingJobName"] and _training_jobs() == [request["TrainingJobName"]]


def test_a_failed_tuning_job_is_retried_under_a_fresh_name_within_32_characters(aws, spec, env, run):
    request = jr.tuning_job(spec, env, run, CODE)
    seed_s3(CODE, *(c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["TrainingJobDefinition"]["InputDataConfig"]))
    client("sagemaker").create_hyper_parameter_tuning_job(**request)
    first = request["HyperParameterTuningJobName"]
    job = sagemaker_backend().hyper_parameter_tuning_jobs[first]
    job.hyper_parameter_tuning_job_status, job.failure_reason = "Failed", "no training job succeeded"
    ctx = context(try_number=2)
    ReattachingTuningOperator(task_id="tune", config=copy.deepcopy(request), deferrable=False, **WAITING).execute(ctx)
    fresh = ctx["ti"].xcom[NAME_XCOM]
    assert fresh == for_try(first, 2, 32) and len(fresh) <= 32
    assert client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=fresh)["HyperParameterTuningJobStatus"] == "Completed"


def test_a_failed_transform_job_is_retried_under_a_fresh_name(aws, spec, env, run):
    sm = client("sagemaker")
    sm.create_model(**jr.model(spec, env, run, MODEL, CODE))
    request = jr.transform_job(spec, env, run, jr.model(spec, env, run, MODEL, CODE)["ModelName"])
    seed_s3(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    sm.create_transform_job(**request)
    job = sagemaker_backend().transform_jobs[request["TransformJobName"]]
    job.transform_job_status, job.failure_reason = "Failed", "ClientError: the model container answered 500"
    ctx = context(try_number=2)
    operator = ReattachingTransformOperator(
        task_id="transform", config={"Transform": copy.deepcopy(request)}, action_if_job_exists="fail", check_if_model_exists=False, deferrable=False, **WAITING
    )
    operator.execute(ctx)
    assert ctx["ti"].xcom[NAME_XCOM] == for_try(request["TransformJobName"], 2)
    assert {j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]} == {
        request["TransformJobName"],
        for_try(request["TransformJobName"], 2),
    }


def test_a_model_left_by_an_earlier_try_does_not_fail_the_retry(aws, spec, env, run):
    request = jr.model(spec, env, run, MODEL, CODE)
    client("sagemaker").create_model(**request)  # the earlier try created it, then failed
    ctx = context(try_number=2)
    FreshNameModelOperator(task_id="create_model", config=copy.deepcopy(request), aws_conn_id=None, region_name=REGION, do_xcom_push=False).execute(ctx)
    fresh = for_try(request["ModelName"], 2)
    assert ctx["ti"].xcom[NAME_XCOM] == fresh
    assert client("sagemaker").describe_model(ModelName=fresh)["PrimaryContainer"]["ModelDataUrl"] == MODEL
    assert AwsTarget.as_ran(VERBS["create_model"], request, fresh)["ModelName"] == fresh


def test_a_describe_error_other_than_not_found_is_not_taken_for_a_free_name(aws, spec, env, run, monkeypatch):
    from botocore.exceptions import ClientError

    request = _training_request(spec, env, run)
    operator = _train(request)

    def throttled(name):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeTrainingJob")

    monkeypatch.setattr(type(operator.hook), "describe_training_job", lambda self, name: throttled(name))
    with pytest.raises(ClientError, match="Rate exceeded"):
        operator.execute(context())
    assert _training_jobs() == []


# --- the names of later tries ------------------------------------------------------------------
def test_a_later_try_s_name_keeps_the_name_and_changes_its_try():
    assert for_try("vertebral-column-train-20261101-1", 2) == "vertebral-column-train-20261101-2"
    assert for_try("vertebral-column-train-20261101-7", 1) == "vertebral-column-train-20261101-1"


def test_a_try_number_that_grows_a_digit_still_fits_the_tuning_limit_and_stays_unique():
    name = "vertebral-column-tune-20261101-9"  # 32 characters: the limit of a tuning job name
    ten, eleven = for_try(name, 10, 32), for_try(name, 11, 32)
    assert len(ten) <= 32 and ten.endswith("-10") and len(eleven) <= 32 and ten != eleven


def test_a_name_without_a_try_number_is_refused():
    with pytest.raises(ValueError, match="does not end in a try number"):
        for_try("vertebral-column-etl", 2)
