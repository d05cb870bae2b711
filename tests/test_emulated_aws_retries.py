"""The aws DAG survives what AWS does: each kind's first failure is followed by a retry that succeeds (emulated AWS).

Two runs of the aws DAG under ``dag.test()`` (the real provider operators, their waiters and
triggers) against an emulator of their own, with faults armed once each
(:mod:`gated_ml.emulated_aws.faults`):

- 2026-11-01: the training job fails (``fail_job``), ``CreateModel`` and
  ``CreateEndpointConfig`` are refused (``ResourceLimitExceeded``); no endpoint serves yet;
- 2026-11-08: the endpoint serves 2026-11-01's model; the deploy's smoke test is answered
  ``ModelError`` (424), so the endpoint is rolled back to the previous config, and the retry
  deploys again under a fresh config name.

What happened is read from the task instances, from the emulator (boto3 clients) and from
moto's recording of every call the run made, in order. A spec copy keeps it short: two
tuning jobs, and a retry delay of one second (``retry_delay_seconds``; ``dag.test()`` waits
out the delay like a scheduler).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import boto3
import pytest

from conftest import ROOT
from harness.fixtures import spec_copy
from test_pipeline_aws import aws_environment

pytestmark = pytest.mark.e2e
BUCKET = "gated-ml-retries-lake"
ROLE = "arn:aws:iam::123456789012:role/gated-ml-sagemaker"
FIRST, SECOND = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 8, tzinfo=dt.UTC)
TRAIN, MODEL, DEPLOY = "training.train", "batch_transform.create_model", "deployment.deploy_endpoint"
TRAINING_FAILURE = "InternalServerError: the training instance was lost (injected)"


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    spec_copy(folder, "vertebral_column", tuning={"max_jobs": 2, "max_parallel": 2}, retries=1, retry_delay_seconds=1)
    return folder


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    from gated_ml.emulated_aws import server

    folder = tmp_path_factory.mktemp("emulator")
    emulator = server.start(folder / "staging", folder / "emulator.log", env={"MOTO_RECORDER_FILEPATH": str(folder / "recording")})
    yield emulator
    server.stop(emulator)


@pytest.fixture(scope="module")
def aws(airflow_db, emulator, specs, tmp_path_factory):
    """This process (the tasks of ``dag.test()``) pointed at the emulator, with the spec copy; the lake bucket exists."""
    env = {
        **aws_environment(emulator.url, BUCKET),
        "AIRFLOW__GATED_ML__SPEC_DIR": str(specs),
        "AIRFLOW__GATED_ML__GX_DIR": str(tmp_path_factory.mktemp("gx")),  # no suite files: the gates run what the spec copy generates
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        from gated_ml import storage

        storage._s3_hook.cache_clear()
        boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield emulator
        storage._s3_hook.cache_clear()


@pytest.fixture(scope="module")
def spec(aws):
    from gated_ml.spec import load_pipeline

    return load_pipeline("vertebral_column")  # the copy


def _moto_api(url: str, path: str, method: str = "POST") -> str:
    request = urllib.request.Request(f"{url}/moto-api/{path}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request) as r:
        return r.read().decode()


def _run(emulator, spec, logical_date: dt.datetime) -> dict:
    """Land the date's batch, run the aws DAG for it under ``dag.test()``; the run, its task instances and the calls it made, in order."""
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml import replay
    from gated_ml.iam import recording
    from gated_ml.targets.aws import AwsTarget

    ds = logical_date.date().isoformat()
    replay.land(spec, AwsTarget().environment(), ds, ds)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    _moto_api(emulator.url, "recorder/reset-recording")
    _moto_api(emulator.url, "recorder/start-recording")
    try:
        dr = bag.dags["vertebral_column"].test(logical_date=logical_date)
    finally:
        _moto_api(emulator.url, "recorder/stop-recording")
    calls = recording.requests(_moto_api(emulator.url, "recorder/download-recording", method="GET"))
    return {"run": dr, "tis": {ti.task_id: ti for ti in dr.get_task_instances()}, "calls": calls, "faults": emulator.control("faults")}


def _sent(calls, operation: str, field: str) -> list:
    """The ``field`` of every ``operation`` call, in the order the run made them."""
    return [c.params.get(field) for c in calls if c.operation == operation]


def _ran_once_but(run: dict, retried: set[str]) -> None:
    """The faulted tasks ran twice and succeeded on try 2; every other task ran once (no fault leaked elsewhere)."""
    states = {task: ti.state for task, ti in run["tis"].items()}
    assert run["run"].state == "success", {k: v for k, v in states.items() if v != "success"}
    tries = {task: ti.try_number for task, ti in run["tis"].items() if ti.state == "success"}
    assert {task for task, n in tries.items() if n == 2} == retried, tries
    assert {n for task, n in tries.items() if task not in retried} == {1}


def _try_states(run: dict, task_id: str) -> dict[int, str]:
    """Each try of a task and how it ended (Airflow's task instance history keeps the earlier tries, as the UI shows them)."""
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    ti = run["tis"][task_id]
    with create_session() as session:
        history = session.query(TaskInstanceHistory).filter_by(dag_id=ti.dag_id, run_id=ti.run_id, task_id=task_id).all()
        return {**{h.try_number: h.state for h in history}, ti.try_number: ti.state}


@pytest.fixture(scope="module")
def first(aws, spec):
    """2026-11-01 with a failed training job, a refused CreateModel and a refused CreateEndpointConfig."""
    aws.control("faults", "DELETE")
    aws.arm_fault("CreateTrainingJob", kind="fail_job", message=TRAINING_FAILURE)
    aws.arm_fault("CreateModel", message="injected: the account's model quota is reached")
    aws.arm_fault("CreateEndpointConfig", message="injected: the account's endpoint config quota is reached")
    return _run(aws, spec, FIRST)


@pytest.fixture(scope="module")
def second(first, aws, spec):
    """2026-11-08, while 2026-11-01's model serves, with an endpoint that answers the first smoke test with ModelError."""
    assert first["run"].state == "success", "needs the first date's model serving"
    aws.arm_fault("InvokeEndpoint", message="injected: Received server error (500) from the model container")
    return _run(aws, spec, SECOND)


def _sm(aws):
    return boto3.client("sagemaker", endpoint_url=aws.url, region_name="us-east-1")


def test_each_first_failure_is_retried_once_and_the_retry_succeeds(first, aws):
    _ran_once_but(first, {TRAIN, MODEL, DEPLOY})
    for task in (TRAIN, MODEL, DEPLOY):
        assert _try_states(first, task) == {1: "failed", 2: "success"}, task
    assert first["faults"]["armed"] == []
    assert sorted(f["action"] for f in first["faults"]["fired"]) == ["CreateEndpointConfig", "CreateModel", "CreateTrainingJob"]


def test_a_failed_training_job_stays_failed_and_its_retry_runs_under_a_fresh_name(first, aws, spec):
    from gated_ml import job_requests as jr

    sm = _sm(aws)
    created = _sent(first["calls"], "CreateTrainingJob", "TrainingJobName")
    assert created == ["vertebral-column-train-20261101-1", "vertebral-column-train-20261101-2"]
    failed, retried = (sm.describe_training_job(TrainingJobName=name) for name in created)
    assert (failed["TrainingJobStatus"], failed["FailureReason"]) == ("Failed", TRAINING_FAILURE)
    assert "ModelArtifacts" not in failed or not failed["ModelArtifacts"].get("S3ModelArtifacts")
    assert retried["TrainingJobStatus"] == "Completed" and jr.final_metric(retried, spec.tuning.objective_metric) is not None
    train_result = first["tis"]["training.train_result"].xcom_pull(task_ids="training.train_result")
    assert train_result["job_name"] == created[1]  # downstream reads the retry's job, not the failed one


def test_a_refused_create_is_sent_again_and_creates_what_the_first_call_could_not(first, aws):
    """A refused CreateModel / CreateEndpointConfig created nothing: the retry finds the name free and creates it under it."""
    sm = _sm(aws)
    models = _sent(first["calls"], "CreateModel", "ModelName")
    assert models == ["vertebral-column-model-20261101-1"] * 2
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == models[:1]
    configs = _sent(first["calls"], "CreateEndpointConfig", "EndpointConfigName")
    assert configs == ["vertebral-column-epc-20261101-1"] * 2
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == configs[:1]
    assert _sent(first["calls"], "CreateEndpoint", "EndpointConfigName") == configs[:1]
    assert _sent(first["calls"], "UpdateEndpoint", "EndpointConfigName") == []  # no endpoint served before: created, not updated
    endpoint = sm.describe_endpoint(EndpointName="vertebral-column")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", configs[0])


def test_a_smoke_test_the_endpoint_could_not_answer_rolls_back_then_the_retry_deploys_under_a_fresh_config(second, aws):
    _ran_once_but(second, {DEPLOY})
    assert _try_states(second, DEPLOY) == {1: "failed", 2: "success"}
    assert [f["action"] for f in second["faults"]["fired"]][-1:] == ["InvokeEndpoint"] and second["faults"]["armed"] == []
    old, failed, fresh = "vertebral-column-epc-20261101-1", "vertebral-column-epc-20261108-1", "vertebral-column-epc-20261108-2"
    assert _sent(second["calls"], "CreateEndpointConfig", "EndpointConfigName") == [failed, fresh]
    assert _sent(second["calls"], "UpdateEndpoint", "EndpointConfigName") == [failed, old, fresh]  # update, roll back, update again
    assert _sent(second["calls"], "CreateEndpoint", "EndpointName") == []
    sm = _sm(aws)
    endpoint = sm.describe_endpoint(EndpointName="vertebral-column")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", fresh)
    assert {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]} == {old, failed, fresh}  # the failed one is kept, unused


def test_the_registry_crowns_the_model_only_after_its_smoke_test_passed(second, aws, spec):
    calls = second["calls"]
    crowned = [i for i, c in enumerate(calls) if c.operation == "PutObject" and c.params["Key"] == f"{spec.name}/registry/champion.json"]
    assert len(crowned) == 1
    invoked = [i for i, c in enumerate(calls) if c.operation == "InvokeEndpoint"]
    updated = [i for i, c in enumerate(calls) if c.operation == "UpdateEndpoint"]
    # the smoke checks: try 1's (answered ModelError), try 2's (agreed); then the smoke_test_endpoint task's
    assert len(invoked) == 3 and invoked[0] < updated[1] < updated[2] < invoked[1] < crowned[0] < invoked[2]
    s3 = boto3.client("s3", endpoint_url=aws.url, region_name="us-east-1")
    champion = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{spec.name}/registry/champion.json")["Body"].read())
    assert champion["endpoint_config"] == "vertebral-column-epc-20261108-2"
    assert second["tis"]["deployment.smoke_test_endpoint"].state == "success"
