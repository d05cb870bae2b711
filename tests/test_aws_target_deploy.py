"""Deployment on `aws`: the endpoint is updated, smoke-tested through a stock runtime client, and rolled back when the test fails.

Against moto in this process, with the project's real smoke test (``deployment.smoke_check``)
reading the test split and batch transform's predictions from the lake. moto answers
``InvokeEndpoint`` from a queue of results (its documented way); an endpoint that answers an
error is a stock client with botocore's ``Stubber``. moto has no ``UpdateEndpoint``, which
:func:`aws_kit.stub_update_endpoint` adds in-process.
"""

import copy
import datetime as dt

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from aws_kit import ACCOUNT, REGION, client, context, mocked_aws, stub_update_endpoint
from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import Fault, Refusal, SmokeTestFailed, SmokeTestUnanswered
from gated_ml.evaluation import registry
from gated_ml.naming import for_try
from gated_ml.stages import deployment
from gated_ml.targets import aws_waits
from gated_ml.targets.aws import VERBS, AwsTarget
from gated_ml.targets.aws_operators import NAME_XCOM, DeployEndpointOperator

OLD_CONFIG = "vertebral-column-epc-20261025-1"
TEST_ROWS = ["Abnormal,63.0,22.6,39.6,40.5,98.7,-0.3", "Normal,39.1,10.1,25.0,29.0,114.4,4.6", "Abnormal,68.8,22.2,50.1,46.6,105.9,-3.5"]
PREDICTIONS = ["0.91", "0.12", "0.77"]


@pytest.fixture
def aws(monkeypatch, lake, spec, env, run):
    """moto with a model for the new config; the lake with the run's test split and batch transform's predictions."""
    with mocked_aws(monkeypatch):
        sm = client("sagemaker")
        for model in ("old-model", "new-model"):
            sm.create_model(ModelName=model, PrimaryContainer={"Image": env.image_uri}, ExecutionRoleArn=env.role_arn)
        loc = jr.locations(spec, env)
        storage.write(loc.features(run.ds, "test") + "test.csv", "\n".join(TEST_ROWS) + "\n")
        storage.write(loc.transform(run.ds) + "test/test.csv.out", "".join(f"{r.split(',')[0]},{p}\n" for r, p in zip(TEST_ROWS, PREDICTIONS, strict=True)))
        yield {"updates": stub_update_endpoint(monkeypatch), "output_uris": [loc.transform(run.ds) + "test/test.csv.out"]}


def _serving_old_config(spec):
    sm = client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName=OLD_CONFIG,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "old-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
    )
    sm.create_endpoint(EndpointName=jr.endpoint_name(spec), EndpointConfigName=OLD_CONFIG)


def _endpoint_answers(*bodies: str) -> None:
    """What the endpoint answers next (moto's queue of InvokeEndpoint results)."""
    from moto.sagemakerruntime.models import sagemakerruntime_backends

    sagemakerruntime_backends[ACCOUNT][REGION].results_queue.extend((body, "text/csv", "AllTraffic", "") for body in bodies)


def _deploy(spec, env, run, aws, deferrable=False):
    config = jr.endpoint_config(spec, run, "new-model")
    request = {"EndpointConfig": config, "Endpoint": jr.endpoint(spec, config["EndpointConfigName"])}
    operator = DeployEndpointOperator(
        task_id="deploy_endpoint",
        config=copy.deepcopy(request),
        smoke_test=lambda client, inputs: deployment.smoke_check(spec, env, run, client, **inputs),
        smoke_inputs={"transformed": {"output_uris": aws["output_uris"]}},
        aws_conn_id=None,
        region_name=REGION,
        check_interval=1,
        deferrable=deferrable,
        do_xcom_push=False,
    )
    return request, operator


def _serves(spec) -> str:
    return client("sagemaker").describe_endpoint(EndpointName=jr.endpoint_name(spec))["EndpointConfigName"]


def _rows(values):
    return "".join(f"{v}\n" for v in values)


def test_an_agreeing_endpoint_is_updated_to_the_new_config(aws, spec, env, run):
    _serving_old_config(spec)
    _endpoint_answers(_rows(PREDICTIONS))
    request, operator = _deploy(spec, env, run, aws)
    ctx = context()
    operator.execute(ctx)
    new = request["EndpointConfig"]["EndpointConfigName"]
    assert _serves(spec) == new and aws["updates"] == [(jr.endpoint_name(spec), new)]
    assert ctx["ti"].xcom[NAME_XCOM] == new
    result = deployment.endpoint_result(spec, env, run, AwsTarget.as_ran(VERBS["deploy_endpoint"], request, new), None, evaluation={"version": 1})
    assert result["endpoint_config"] == new


def test_a_failed_smoke_test_rolls_back_to_the_previous_config_crowns_nothing_and_is_not_retried(aws, spec, env, run):
    _serving_old_config(spec)
    _endpoint_answers(_rows(["0.91", "0.55", "0.77"]))  # row 1 disagrees with batch transform's 0.12
    request, operator = _deploy(spec, env, run, aws)
    with pytest.raises(AirflowFailException) as failed:
        operator.execute(context())
    message = str(failed.value)
    assert "rows [1]" in message and f"rolled back to {OLD_CONFIG}" in message and "registry is unchanged" in message
    new = request["EndpointConfig"]["EndpointConfigName"]
    assert aws["updates"] == [(jr.endpoint_name(spec), new), (jr.endpoint_name(spec), OLD_CONFIG)]
    assert _serves(spec) == OLD_CONFIG
    assert registry.champion(spec, env) is None  # only the result task crowns, and it runs after the operator succeeded


def test_a_first_deployment_that_fails_its_smoke_test_leaves_no_endpoint(aws, spec, env, run):
    _endpoint_answers(_rows(["0.91", "0.12"]))  # one answer short
    _, operator = _deploy(spec, env, run, aws)
    with pytest.raises(AirflowFailException, match="answered 2 predictions for 3 rows"):
        operator.execute(context())
    assert client("sagemaker").list_endpoints()["Endpoints"] == []


def test_a_retry_after_a_failed_deployment_creates_the_config_under_a_fresh_name(aws, spec, env, run):
    _serving_old_config(spec)
    request, operator = _deploy(spec, env, run, aws)
    client("sagemaker").create_endpoint_config(**request["EndpointConfig"])  # the earlier try created it, then failed
    _endpoint_answers(_rows(PREDICTIONS))
    ctx = context(try_number=2)
    operator.execute(ctx)
    fresh = for_try(request["EndpointConfig"]["EndpointConfigName"], 2)
    assert ctx["ti"].xcom[NAME_XCOM] == fresh and _serves(spec) == fresh


def test_an_update_that_left_the_old_config_serving_is_a_fault_and_skips_the_smoke_test(aws, spec, env, run, monkeypatch):
    from moto.sagemaker.responses import SageMakerResponse

    _serving_old_config(spec)
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", lambda self: "{}", raising=False)  # SageMaker rolled a failed update back itself
    _, operator = _deploy(spec, env, run, aws)
    with pytest.raises(Fault, match=f"serves {OLD_CONFIG}"):
        operator.execute(context())


def test_the_deferred_wait_for_the_endpoint_takes_its_attempts_from_the_configs_timeouts(aws, spec, env, run):
    _serving_old_config(spec)
    request, operator = _deploy(spec, env, run, aws, deferrable=True)
    ctx = context()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(ctx)
    assert deferred.value.trigger.attempts == aws_waits.endpoint(request["EndpointConfig"], 1).max_attempts
    _endpoint_answers(_rows(["0.1", "0.12", "0.77"]))  # then, resumed by the trigger (a fresh operator, the same try), the smoke test fails: rollback
    _, resumed = _deploy(spec, env, run, aws, deferrable=True)
    with pytest.raises(AirflowFailException, match=f"rolled back to {OLD_CONFIG}"):
        resumed.resume_execution("execute_complete", {"event": {"status": "success", "job_name": jr.endpoint_name(spec)}}, ctx)
    assert _serves(spec) == OLD_CONFIG


def test_an_older_dates_deployment_is_skipped_when_a_later_dates_model_took_the_endpoint(aws, spec, env, run):
    """Two dates of a backfill: 2026-11-08 deployed between 2026-11-01's request and its deploy; 11-01 never replaces it."""
    from airflow.sdk.exceptions import AirflowSkipException

    later = jr.endpoint_config(spec, jr.Run(run.logical_date + dt.timedelta(days=7), 1), "old-model")
    sm = client("sagemaker")
    sm.create_endpoint_config(EndpointConfigName=later["EndpointConfigName"], ProductionVariants=later["ProductionVariants"])
    sm.create_endpoint(EndpointName=jr.endpoint_name(spec), EndpointConfigName=later["EndpointConfigName"])
    request, operator = _deploy(spec, env, run, aws)
    with pytest.raises(AirflowSkipException, match="of a later run than this one"):
        operator.execute(context())
    assert _serves(spec) == later["EndpointConfigName"] and aws["updates"] == []
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert request["EndpointConfig"]["EndpointConfigName"] not in configs  # nothing created for the skipped deployment


# --- a smoke test the endpoint could not answer (retried) vs one it answered wrongly (refused) -----
def _runtime_answering(code: str, status: int):
    """A stock ``sagemaker-runtime`` client whose next InvokeEndpoint is answered with this error (botocore's Stubber)."""
    from botocore.stub import Stubber

    runtime = client("sagemaker-runtime")
    stubber = Stubber(runtime)
    stubber.add_client_error("invoke_endpoint", service_error_code=code, service_message=f"injected {code}", http_status_code=status)
    stubber.activate()
    return runtime


@pytest.mark.parametrize(("code", "status"), [("ModelError", 424), ("ServiceUnavailable", 503), ("ThrottlingException", 400)])
def test_an_endpoint_that_could_not_answer_the_smoke_test_is_a_fault(aws, spec, env, run, code, status):
    with pytest.raises(SmokeTestUnanswered, match=rf"{jr.endpoint_name(spec)} answered InvokeEndpoint with {code} \({status}\).*retried") as raised:
        deployment.check_agreement(spec, env, run, _runtime_answering(code, status), aws["output_uris"])
    assert isinstance(raised.value, Fault) and not isinstance(raised.value, Refusal)


def test_an_endpoint_that_refuses_the_smoke_test_request_is_a_refusal(aws, spec, env, run):
    with pytest.raises(SmokeTestFailed, match=r"ValidationError \(400\).*a retry would be answered the same"):
        deployment.check_agreement(spec, env, run, _runtime_answering("ValidationError", 400), aws["output_uris"])


def test_an_endpoint_that_cannot_be_reached_is_a_fault(aws, spec, env, run):
    import socket

    from botocore.config import Config

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unreachable = boto3.client(
        "sagemaker-runtime", region_name=REGION, endpoint_url=f"http://127.0.0.1:{port}", config=Config(retries={"total_max_attempts": 1}, connect_timeout=2)
    )
    with pytest.raises(SmokeTestUnanswered, match="did not answer InvokeEndpoint"):
        deployment.check_agreement(spec, env, run, unreachable, aws["output_uris"])


def test_answers_that_differ_from_batch_transform_stay_a_refusal(aws, spec, env, run):
    _endpoint_answers(_rows(["0.91", "0.55", "0.77"]))
    with pytest.raises(SmokeTestFailed, match=r"disagree on test rows \[1\]"):
        deployment.check_agreement(spec, env, run, client("sagemaker-runtime"), aws["output_uris"])


def test_a_smoke_test_the_endpoint_could_not_answer_rolls_back_and_fails_for_a_retry_that_deploys_again(aws, spec, env, run):
    _serving_old_config(spec)
    request, operator = _deploy(spec, env, run, aws)
    operator.smoke_test = lambda _client, inputs: deployment.smoke_check(spec, env, run, _runtime_answering("ModelError", 424), **inputs)
    with pytest.raises(SmokeTestUnanswered) as failed:  # a Fault: Airflow retries the task (not AirflowFailException)
        operator.execute(context())
    assert f"rolled back to {OLD_CONFIG}" in str(failed.value) and "registry is unchanged" in str(failed.value)
    new = request["EndpointConfig"]["EndpointConfigName"]
    assert aws["updates"] == [(jr.endpoint_name(spec), new), (jr.endpoint_name(spec), OLD_CONFIG)]
    assert _serves(spec) == OLD_CONFIG and registry.champion(spec, env) is None

    _endpoint_answers(_rows(PREDICTIONS))  # the retry: the endpoint answers now
    _, retry = _deploy(spec, env, run, aws)
    ctx = context(try_number=2)
    retry.execute(ctx)
    fresh = for_try(new, 2)
    assert ctx["ti"].xcom[NAME_XCOM] == fresh and _serves(spec) == fresh
    assert aws["updates"][2:] == [(jr.endpoint_name(spec), fresh)]
