"""The `aws` target end to end: the real Amazon provider operators against the AWS emulator, offline.

Two runs of the aws DAG under ``dag.test()`` with ``[gated_ml] target = aws``: every operator
makes its real calls over HTTP to the emulator (:mod:`gated_ml.emulated_aws`: a moto server
whose Glue, training, tuning, transform and endpoint work the local runners do). Nothing is
seeded: upstream lands each day's raw batch in S3 and the DAG's own jobs produce the curated
data, the models, the predictions and the serving endpoint.

The same two runs prove the DAG survives what AWS does: a fault of each kind is armed once
(:mod:`gated_ml.emulated_aws.faults`), and each first failure is followed by a retry that succeeds:

- 2026-11-01: the training job fails (``fail_job``), ``CreateModel`` and
  ``CreateEndpointConfig`` are refused (``ResourceLimitExceeded``); no endpoint serves yet;
- 2026-11-08: the endpoint serves 2026-11-01's model; the deploy's smoke test is answered
  ``ModelError`` (424), so the endpoint is rolled back to the previous config, and the retry
  deploys again under a fresh config name.

What happened is read from the task instances, from the emulator (boto3 clients), from S3 and
from moto's recording of every call each run made, in order. One pair of runs feeds every
assertion (they are the expensive part). A spec copy keeps them short: three tuning jobs, and a
retry delay of one second (``retry_delay_seconds``; ``dag.test()`` waits out the delay like a scheduler).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import boto3
import pytest

from conftest import ROOT
from harness.fixtures import spec_copy

pytestmark = pytest.mark.e2e
DS, DS2 = "2026-11-01", "2026-11-08"
FIRST, SECOND = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 8, tzinfo=dt.UTC)
BUCKET = "gated-ml-test-lake"
ROLE = "arn:aws:iam::123456789012:role/gated-ml-sagemaker"
TRAIN, MODEL, DEPLOY = "training.train", "batch_transform.create_model", "deployment.deploy_endpoint"
TRAINING_FAILURE = "InternalServerError: the training instance was lost (injected)"
TUNING_JOBS = 3


def aws_environment(endpoint_url: str, bucket: str = BUCKET) -> dict[str, str]:
    """The settings that point this process's Airflow (and the aws target) at an AWS emulator."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"}}),
        "AIRFLOW_VAR_GATED_ML_BUCKET": bucket,
        "AIRFLOW_VAR_GATED_ML_SAGEMAKER_ROLE_ARN": ROLE,
        "AIRFLOW_VAR_GATED_ML_GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/gated-ml-glue",
        "AIRFLOW__GATED_ML__TARGET": "aws",
        "AIRFLOW__GATED_ML__DEFERRABLE": "true",  # dag.test runs each trigger inline
        "AIRFLOW__GATED_ML__POLL_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    spec_copy(folder, "vertebral_column", tuning={"max_jobs": TUNING_JOBS, "max_parallel": 2}, retries=1, retry_delay_seconds=1)
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
    replay.land(spec, AwsTarget().environment(), ds, ds)  # the only thing the test puts in S3
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    _moto_api(emulator.url, "recorder/reset-recording")
    _moto_api(emulator.url, "recorder/start-recording")
    try:
        dr = bag.dags["vertebral_column"].test(logical_date=logical_date)
    finally:
        _moto_api(emulator.url, "recorder/stop-recording")
    recorded = _moto_api(emulator.url, "recorder/download-recording", method="GET")
    sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
    after = {  # what the account held when this run ended (the later run changes it)
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "endpoint_configs": sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]),
        "endpoint": sm.describe_endpoint(EndpointName=f"{spec.slug}"),
        "packages": sm.list_model_packages(ModelPackageGroupName=spec.slug)["ModelPackageSummaryList"],
    }
    return {
        "after": after,
        "run": dr,
        "tis": {ti.task_id: ti for ti in dr.get_task_instances()},
        "recorded": recorded,
        "calls": recording.requests(recorded),
        "faults": emulator.control("faults"),
    }


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


def _s3(aws):
    return boto3.client("s3", endpoint_url=aws.url, region_name="us-east-1")


def _key(uri: str) -> str:
    return uri.split("/", 3)[3]


def _lines(s3, key: str) -> list[str]:
    return [line for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines() if line]


def _actions(recording: str) -> set[str]:
    """IAM actions of the requests moto recorded (JSON protocols by X-Amz-Target, S3 and the runtime by REST path)."""
    import base64
    from urllib.parse import parse_qs, urlsplit

    prefixes = {"SageMaker": "sagemaker", "AWSGlue": "glue", "Logs_20140328": "logs"}
    out = set()
    for line in filter(None, recording.splitlines()):
        r = json.loads(line)
        h = {k.lower(): v for k, v in r["headers"].items()}
        service = h.get("authorization", "").split("Credential=")[-1].split("/")[3] if "Credential=" in h.get("authorization", "") else ""
        target = h.get("x-amz-target")
        url = urlsplit(r["url"])
        if target:
            prefix, action = target.split(".", 1)
            out.add(f"{prefixes.get(prefix, prefix.lower())}:{action}")
        elif url.path.endswith("/invocations"):
            out.add("sagemaker:InvokeEndpoint")
        elif service == "s3":
            parts = [p for p in url.path.split("/") if p]
            if len(parts) <= 1:
                out.add("s3:ListBucket" if r["method"] in ("GET", "HEAD") else f"s3:{r['method']}Bucket")
            else:
                out.add({"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject"}.get(r["method"], f"s3:{r['method']}Object"))
                if "x-amz-copy-source" in h:
                    out.add("s3:GetObject")
        else:
            body = base64.b64decode(r["body"]).decode(errors="replace") if r.get("body_encoded") else (r.get("body") or "")
            action = parse_qs(body).get("Action", ["?"])[0]
            out.add(f"{service}:{action}")
    return out


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


# --- the first date: the whole pipeline, on AWS's own terms ------------------------------
def test_full_run_on_the_aws_target(first, aws, spec):
    """Every provider operator succeeded (after its retry, for the faulted ones) and each AWS resource is what the spec asked for."""
    from gated_ml import job_requests as jr

    dr, recorded = first["run"], first["recorded"]
    called = _actions(recorded)
    states = {task: ti.state for task, ti in first["tis"].items()}
    assert dr.state == "success", {k: v for k, v in states.items() if v != "success"}

    sm, s3 = _sm(aws), _s3(aws)
    glue = boto3.client("glue", endpoint_url=aws.url, region_name="us-east-1")

    # Glue: the job definition and the run's arguments
    job = glue.get_job(JobName="vertebral-column-etl")["Job"]
    assert job["GlueVersion"] == "5.0" and job["WorkerType"] == "G.1X" and job["Command"]["ScriptLocation"].startswith(f"s3://{BUCKET}/vertebral_column/code/")
    raw_formats = job["Command"]["ScriptLocation"].rsplit("/", 1)[0] + "/raw_formats.py"  # the module the script imports
    assert job["DefaultArguments"]["--extra-py-files"] == raw_formats
    s3.head_object(Bucket=BUCKET, Key=raw_formats.split("/", 3)[3])
    run = glue.get_job_runs(JobName="vertebral-column-etl")["JobRuns"][0]
    assert run["Arguments"]["--output_uri"] == f"s3://{BUCKET}/vertebral_column/curated/ds={DS}/"
    partition = glue.get_partition(DatabaseName="gated_ml", TableName="vertebral_column", PartitionValues=[DS])["Partition"]
    assert partition["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/vertebral_column/curated/ds={DS}/"

    # SageMaker: the jobs, named from the pipeline, the logical date and the try (train's -1 failed: the fault)
    training = sm.describe_training_job(TrainingJobName="vertebral-column-train-20261101-2")
    assert training["HyperParameters"]["sagemaker_program"] == "train.py" and training["RoleArn"] == ROLE
    assert training["AlgorithmSpecification"]["TrainingImage"].endswith("sagemaker-xgboost:3.2-0")
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="vertebral-column-tune-20261101-1")
    assert tuning["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == TUNING_JOBS == spec.tuning.max_jobs
    assert tuning["TrainingJobStatusCounters"]["Completed"] == TUNING_JOBS
    transforms = {j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]}
    assert {"vertebral-column-transform-20261101-1", "vertebral-column-transform-val-20261101-1"} <= transforms
    after = first["after"]
    assert after["endpoint_configs"] == ["vertebral-column-epc-20261101-1"]
    assert after["endpoint"]["EndpointConfigName"] == "vertebral-column-epc-20261101-1"
    packages = after["packages"]
    assert len(packages) == 1 and packages[0]["ModelApprovalStatus"] == "Approved"

    # the jobs really ran: what they wrote was written by them (the test landed only the raw batch)
    objective = spec.tuning.objective_metric
    assert training["TrainingJobStatus"] == "Completed" and jr.final_metric(training, objective) is not None
    s3.head_object(Bucket=BUCKET, Key=_key(training["ModelArtifacts"]["S3ModelArtifacts"]))
    best = tuning["BestTrainingJob"]
    wanted = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    assert wanted == objective and best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == wanted
    assert sm.describe_training_job(TrainingJobName=best["TrainingJobName"])["TrainingJobStatus"] == "Completed"  # a trial is a training job too
    candidates = {
        training["ModelArtifacts"]["S3ModelArtifacts"]: jr.final_metric(training, objective),
        f"s3://{BUCKET}/vertebral_column/models/{best['TrainingJobName']}/output/model.tar.gz": best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
    }
    sign = 1 if spec.tuning.objective_type == "Maximize" else -1
    models = after["models"]
    assert len(models) == 1
    assert sm.describe_model(ModelName=models[0])["PrimaryContainer"]["ModelDataUrl"] == max(candidates, key=lambda u: sign * candidates[u])
    s3.head_object(Bucket=BUCKET, Key=_key(max(candidates, key=lambda u: sign * candidates[u])))

    # predictions: one per test row, and the endpoint, called through the emulator by a stock client, answers as batch transform did
    test_rows = _lines(s3, f"vertebral_column/features/ds={DS}/test/test.csv")
    predictions = [float(line.split(",")[-1]) for line in _lines(s3, f"vertebral_column/transform/ds={DS}/test/test.csv.out")]
    assert len(predictions) == len(test_rows) > 0
    runtime = boto3.client("sagemaker-runtime", endpoint_url=aws.url, region_name="us-east-1")
    body = "".join(row.split(",", 1)[1] + "\n" for row in test_rows[:5]).encode()
    answers = [
        float(a)
        for a in runtime.invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Accept="text/csv", Body=body)["Body"].read().decode().split()
    ]
    assert answers == pytest.approx(predictions[:5], abs=1e-6)

    # S3: what the pipeline itself wrote (code, splits, gate results, evaluation, registry)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="vertebral_column/")["Contents"]}
    for key in (
        f"vertebral_column/landing/ds={DS}/column_2C_weka.arff",
        f"vertebral_column/features/ds={DS}/train/train.csv",
        f"vertebral_column/quality/ds={DS}/curated.json",
        f"vertebral_column/quality/ds={DS}/data_docs/curated/index.html",
        f"vertebral_column/evaluation/ds={DS}/metrics.json",
        f"vertebral_column/evaluation/ds={DS}/roc_curve.png",
        "vertebral_column/registry/champion.json",
    ):
        assert key in keys, key
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"vertebral_column/evaluation/ds={DS}/metrics.json")["Body"].read())
    assert report["decision"] == "Approved" and report["metrics"]["roc_auc"] >= 0.85
    assert states["deployment.smoke_test_endpoint"] == "success"

    # IAM: every call the DAG made, and every call its jobs make as their roles, is allowed by the rendered policies
    from gated_ml.iam import check, jobs, recording, render
    from gated_ml.iam.calls import airflow_calls
    from test_iam import IAM, WHERE

    assert {"sagemaker:CreateTrainingJob", "glue:StartJobRun", "s3:PutObject", "sagemaker:InvokeEndpoint"} <= called
    requests = recording.requests(recorded)
    calls = airflow_calls(requests, IAM.airflow_role_arn, WHERE) + jobs.job_role_calls(requests, WHERE)
    made = {(c.role_arn, c.action) for c in calls}
    for role, action in (
        (IAM.airflow_role_arn, "sagemaker:CreateHyperParameterTuningJob"),
        (IAM.airflow_role_arn, "iam:PassRole"),
        (IAM.sagemaker_role_arn, "s3:GetObject"),
        (IAM.glue_role_arn, "s3:PutObject"),
    ):
        assert (role, action) in made, (role, action)
    assert check.denied(calls, render.render_roles(spec, IAM)) == []


def test_a_later_retry_of_training_reuses_the_completed_job(first, aws, spec):
    """A retry of the training task (try 3) walks the names: -1 failed, -2 completed, so it reuses -2 and starts no job."""
    from unittest import mock

    from gated_ml import job_requests as jr
    from gated_ml.stages.training import TRAIN
    from gated_ml.targets.aws import AwsTarget
    from gated_ml.targets.aws_operators import NAME_XCOM, ReattachingTrainingOperator

    sm = _sm(aws)
    completed = sm.describe_training_job(TrainingJobName="vertebral-column-train-20261101-2")
    retry = jr.Run(FIRST, 3)
    request = TRAIN.request(spec, AwsTarget().environment(), retry, code={"sourcedir_uri": completed["HyperParameters"]["sagemaker_submit_directory"]})
    before = len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    ti = mock.MagicMock(try_number=3)
    ReattachingTrainingOperator(task_id="train_retry", config=request, check_interval=1, wait_for_completion=True).execute({"ti": ti})
    ti.xcom_push.assert_called_with(key=NAME_XCOM, value="vertebral-column-train-20261101-2")  # the completed job, not a new one
    assert len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == before


def test_a_second_date_runs_its_own_jobs_and_updates_the_endpoint(second, aws, spec):
    """The next batch's run reuses nothing by name but the Glue job and the endpoint."""
    states = {task: ti.state for task, ti in second["tis"].items()}
    assert second["run"].state == "success", {k: v for k, v in states.items() if v != "success"}
    sm = _sm(aws)
    created = set(_sent(second["calls"], "CreateTrainingJob", "TrainingJobName"))
    assert "vertebral-column-train-20261108-1" in created and all("20261108" in n for n in created)
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="vertebral-column-tune-20261108-1")
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    assert _sent(second["calls"], "CreateEndpoint", "EndpointName") == []  # updated in place
    endpoint = second["after"]["endpoint"]
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "vertebral-column-epc-20261108-2")
    assert len(second["after"]["packages"]) == 2
    assert _lines(_s3(aws), f"vertebral_column/transform/ds={DS2}/test/test.csv.out")  # this date's predictions, by this date's job
    assert len(boto3.client("glue", endpoint_url=aws.url, region_name="us-east-1").get_job_runs(JobName="vertebral-column-etl")["JobRuns"]) == 2


# --- the faults: each first failure retried once, and the retry succeeds -----------------
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
    models = _sent(first["calls"], "CreateModel", "ModelName")
    assert models == ["vertebral-column-model-20261101-1"] * 2
    assert first["after"]["models"] == models[:1]
    configs = _sent(first["calls"], "CreateEndpointConfig", "EndpointConfigName")
    assert configs == ["vertebral-column-epc-20261101-1"] * 2
    assert first["after"]["endpoint_configs"] == configs[:1]
    assert _sent(first["calls"], "CreateEndpoint", "EndpointConfigName") == configs[:1]
    assert _sent(first["calls"], "UpdateEndpoint", "EndpointConfigName") == []  # no endpoint served before: created, not updated
    endpoint = first["after"]["endpoint"]
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", configs[0])


def test_a_smoke_test_the_endpoint_could_not_answer_rolls_back_then_the_retry_deploys_under_a_fresh_config(second, aws):
    _ran_once_but(second, {DEPLOY})
    assert _try_states(second, DEPLOY) == {1: "failed", 2: "success"}
    assert [f["action"] for f in second["faults"]["fired"]][-1:] == ["InvokeEndpoint"] and second["faults"]["armed"] == []
    old, failed, fresh = "vertebral-column-epc-20261101-1", "vertebral-column-epc-20261108-1", "vertebral-column-epc-20261108-2"
    assert _sent(second["calls"], "CreateEndpointConfig", "EndpointConfigName") == [failed, fresh]
    assert _sent(second["calls"], "UpdateEndpoint", "EndpointConfigName") == [failed, old, fresh]  # update, roll back, update again
    assert _sent(second["calls"], "CreateEndpoint", "EndpointName") == []
    endpoint = second["after"]["endpoint"]
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", fresh)
    assert set(second["after"]["endpoint_configs"]) == {old, failed, fresh}  # the failed one is kept, unused


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


# --- requests refused before any call --------------------------------------------------------
def test_a_bad_request_is_rejected_before_any_call(aws, spec):
    """The request task builds and validates; a request AWS would refuse never reaches an operator."""
    from gated_ml import job_requests as jr
    from gated_ml.errors import RequestValidationError

    sm = _sm(aws)
    before = sm.list_training_jobs()["TrainingJobSummaries"]
    env = jr.Environment(
        bucket=BUCKET, role_arn="gated-ml-role", glue_role_arn=ROLE, image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    )
    with pytest.raises(RequestValidationError, match="RoleArn: 'gated-ml-role' does not match the pattern"):
        jr.training_job(spec, env, jr.Run(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 1), "s3://b/code.tar.gz")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == before


def test_catalog_requests_are_valid(spec):
    from gated_ml import job_requests as jr

    env = jr.Environment(bucket=BUCKET, role_arn=ROLE, glue_role_arn=ROLE, image_uri="x")
    run = jr.Run(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 1)
    table = jr.catalog_table(spec, env)["TableInput"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/vertebral_column/curated/"
    assert {"Name": "pelvic_tilt", "Type": "double"} in table["StorageDescriptor"]["Columns"]
    assert jr.catalog_partition(spec, env, run)["PartitionInput"]["Values"] == [DS]


# --- operating it on aws: the scoring DAG and a rollback, through the provider's operators -----
@pytest.fixture(scope="module")
def operated(second, aws, spec):
    """After the two training runs (both versions Approved, 2026-11-08's serving): score 2026-11-08's new rows, then roll back."""
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml import replay
    from gated_ml.iam import recording
    from gated_ml.targets.aws import AwsTarget

    assert second["run"].state == "success", "needs both dates' models"
    replay.land(spec, AwsTarget().environment(), DS2, DS2, zone="scoring")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    scored = bag.dags[spec.scoring_dag_id].test(logical_date=SECOND)
    _moto_api(aws.url, "recorder/reset-recording")
    _moto_api(aws.url, "recorder/start-recording")
    try:
        rolled = bag.dags[f"{spec.name}_rollback_model"].test(run_conf={"reason": "the 2026-11-08 model misbehaves in production"})
    finally:
        _moto_api(aws.url, "recorder/stop-recording")
    calls = recording.requests(_moto_api(aws.url, "recorder/download-recording", method="GET"))
    return {"scored": scored, "rolled": rolled, "calls": calls}


def test_the_scoring_dag_scores_new_rows_on_aws_with_the_approved_models_own_sagemaker_model(operated, aws, spec):
    dr = operated["scored"]
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances() if ti.state != "success"}
    sm, s3 = _sm(aws), _s3(aws)
    job = sm.describe_transform_job(TransformJobName="vertebral-column-score-20261108-1")
    assert (job["TransformJobStatus"], job["ModelName"]) == ("Completed", "vertebral-column-model-20261108-1")  # version 2's model, no new one
    base = f"vertebral_column/predictions/ds={DS2}/predictions-v0002"
    provenance = json.loads(s3.get_object(Bucket=BUCKET, Key=base + ".model.json")["Body"].read())
    assert (provenance["model_version"], provenance["model_name"], provenance["transform_job"]) == (
        2,
        "vertebral-column-model-20261108-1",
        "vertebral-column-score-20261108-1",
    )
    rows = _lines(s3, base + ".csv")
    assert rows[0].endswith(",prediction,predicted_label") and len(rows) == 1 + spec.scoring.replay.rows


def test_a_rollback_on_aws_serves_the_previous_version_and_rejects_the_rolled_back_one_in_the_model_registry(operated, aws, spec):
    dr = operated["rolled"]
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances() if ti.state != "success"}
    sm, s3 = _sm(aws), _s3(aws)
    endpoint = sm.describe_endpoint(EndpointName="vertebral-column")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"].startswith("vertebral-column-rollback-v1-r")
    assert config["ProductionVariants"][0]["ModelName"] == "vertebral-column-model-20261101-1"
    packages = {p["ModelPackageVersion"]: p for p in sm.list_model_packages(ModelPackageGroupName="vertebral-column")["ModelPackageSummaryList"]}
    rolled_back = sm.describe_model_package(ModelPackageName=packages[2]["ModelPackageArn"])
    assert rolled_back["ModelApprovalStatus"] == "Rejected" and "rolled back" in rolled_back["ApprovalDescription"]
    assert rolled_back["ApprovalDescription"].endswith("the 2026-11-08 model misbehaves in production")
    assert packages[1]["ModelApprovalStatus"] == "Approved"
    assert [c.params["ModelApprovalStatus"] for c in operated["calls"] if c.operation == "UpdateModelPackage"] == ["Rejected"]
    champion = json.loads(s3.get_object(Bucket=BUCKET, Key="vertebral_column/registry/champion.json")["Body"].read())
    assert champion["version"] == 1 and champion["endpoint_config"] == endpoint["EndpointConfigName"]
    # the endpoint answers with version 1's predictions again (its own batch transform of 2026-11-01's test split)
    test_rows = _lines(s3, f"vertebral_column/features/ds={DS}/test/test.csv")
    expected = [float(line.split(",")[-1]) for line in _lines(s3, f"vertebral_column/transform/ds={DS}/test/test.csv.out")]
    runtime = boto3.client("sagemaker-runtime", endpoint_url=aws.url, region_name="us-east-1")
    body = "".join(row.split(",", 1)[1] + "\n" for row in test_rows[:5]).encode()
    answer = runtime.invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Accept="text/csv", Body=body)["Body"].read().decode()
    assert [float(a) for a in answer.split()] == pytest.approx(expected[:5], abs=1e-6)
