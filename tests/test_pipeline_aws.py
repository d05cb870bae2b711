"""The `aws` target end to end: the real Amazon provider operators against the AWS emulator, offline.

The DAG runs through ``dag.test()`` with ``[gated_ml] target = aws``; every operator makes
its real calls over HTTP to the emulator (:mod:`gated_ml.emulated_aws`: a moto server whose
Glue, training, tuning, transform and endpoint work the local runners do). Nothing is
seeded: upstream lands the day's raw batch in S3 and the DAG's own jobs produce the curated
data, the models, the predictions and the serving endpoint.
"""

import datetime as dt
import json

import boto3
import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e
DS = "2026-11-01"
BUCKET = "gated-ml-test-lake"
ROLE = "arn:aws:iam::123456789012:role/gated-ml-sagemaker"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    from gated_ml.emulated_aws import server

    folder = tmp_path_factory.mktemp("emulator")
    recording = {"MOTO_RECORDER_FILEPATH": str(folder / "recording")}  # not the working directory
    emulator = server.start(folder / "staging", folder / "emulator.log", env=recording)
    yield emulator
    server.stop(emulator)


@pytest.fixture(scope="module")
def moto_server(emulator):
    return emulator.url


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


@pytest.fixture
def aws_target(moto_server, monkeypatch, tmp_path):
    env = aws_environment(moto_server)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from gated_ml import storage

    storage._s3_hook.cache_clear()
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    return moto_server


def _moto_api(url: str, path: str, method: str = "POST") -> str:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/{path}", method=method, data=b"" if method == "POST" else None)) as r:
        return r.read().decode()


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


def _key(uri: str) -> str:
    return uri.split("/", 3)[3]


def _lines(s3, key: str) -> list[str]:
    return [line for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines() if line]


def _s3(url):
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1")


@pytest.fixture
def landed(aws_target, spec):
    """Upstream delivers the day's raw batch to the landing zone in S3 (the only thing the test puts there)."""
    from gated_ml import replay
    from gated_ml.targets.aws import AwsTarget

    return replay.land(spec, AwsTarget().environment(), DS, DS)


def test_full_run_on_the_aws_target(airflow_db, landed, aws_target, spec):
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml import job_requests as jr

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    _moto_api(aws_target, "recorder/reset-recording")
    _moto_api(aws_target, "recorder/start-recording")
    dr = bag.dags["vertebral_column"].test(logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    _moto_api(aws_target, "recorder/stop-recording")
    recorded = _moto_api(aws_target, "recorder/download-recording", method="GET")
    called = _actions(recorded)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", {k: v for k, v in states.items() if v != "success"}

    sm = boto3.client("sagemaker", endpoint_url=aws_target, region_name="us-east-1")
    glue = boto3.client("glue", endpoint_url=aws_target, region_name="us-east-1")
    s3 = _s3(aws_target)

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

    # SageMaker: the jobs, named from the pipeline, the logical date and the try
    training = sm.describe_training_job(TrainingJobName="vertebral-column-train-20261101-1")
    assert training["HyperParameters"]["sagemaker_program"] == "train.py" and training["RoleArn"] == ROLE
    assert training["AlgorithmSpecification"]["TrainingImage"].endswith("sagemaker-xgboost:3.2-0")
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="vertebral-column-tune-20261101-1")
    assert tuning["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 10
    transforms = {j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]}
    assert {"vertebral-column-transform-20261101-1", "vertebral-column-transform-val-20261101-1"} <= transforms
    assert [e["EndpointConfigName"] for e in sm.list_endpoint_configs()["EndpointConfigs"]] == ["vertebral-column-epc-20261101-1"]
    assert sm.describe_endpoint(EndpointName="vertebral-column")["EndpointConfigName"] == "vertebral-column-epc-20261101-1"
    packages = sm.list_model_packages(ModelPackageGroupName="vertebral-column")["ModelPackageSummaryList"]
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
    models = sm.list_models()["Models"]
    assert len(models) == 1
    assert sm.describe_model(ModelName=models[0]["ModelName"])["PrimaryContainer"]["ModelDataUrl"] == max(candidates, key=lambda u: sign * candidates[u])
    s3.head_object(Bucket=BUCKET, Key=_key(max(candidates, key=lambda u: sign * candidates[u])))

    # predictions: one per test row, and the endpoint, called through the emulator by a stock client, answers as batch transform did
    test_rows = _lines(s3, f"vertebral_column/features/ds={DS}/test/test.csv")
    predictions = [float(line.split(",")[-1]) for line in _lines(s3, f"vertebral_column/transform/ds={DS}/test/test.csv.out")]
    assert len(predictions) == len(test_rows) > 0
    runtime = boto3.client("sagemaker-runtime", endpoint_url=aws_target, region_name="us-east-1")
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

    # a retry of the training task (try 2) reuses try 1's completed job: no second job is started
    from unittest import mock

    from gated_ml.stages.training import TRAIN
    from gated_ml.targets.aws import AwsTarget
    from gated_ml.targets.aws_operators import NAME_XCOM, ReattachingTrainingOperator

    retry = jr.Run(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 2)
    request = TRAIN.request(spec, AwsTarget().environment(), retry, code={"sourcedir_uri": training["HyperParameters"]["sagemaker_submit_directory"]})
    before = len(sm.list_training_jobs()["TrainingJobSummaries"])
    ti = mock.MagicMock(try_number=2)
    ReattachingTrainingOperator(task_id="train_retry", config=request, check_interval=1, wait_for_completion=True).execute({"ti": ti})
    ti.xcom_push.assert_called_with(key=NAME_XCOM, value="vertebral-column-train-20261101-1")  # try 1's job, not a new one
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == before


def test_a_second_date_runs_its_own_jobs_and_updates_the_endpoint(airflow_db, aws_target, spec):
    """The next batch's run (after the first test, on the same emulator) reuses nothing by name but the Glue job and the endpoint."""
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml import replay
    from gated_ml.targets.aws import AwsTarget

    sm = boto3.client("sagemaker", endpoint_url=aws_target, region_name="us-east-1")
    if "vertebral-column" not in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}:
        pytest.skip("needs the first date's run (test_full_run_on_the_aws_target) on this emulator")
    ds2 = "2026-11-08"
    replay.land(spec, AwsTarget().environment(), ds2, ds2)
    before = {j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]}
    dr = DagBag(dag_folder=str(ROOT / "dags")).dags["vertebral_column"].test(logical_date=dt.datetime(2026, 11, 8, tzinfo=dt.UTC))
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", {k: v for k, v in states.items() if v != "success"}

    new = {j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]} - before
    assert "vertebral-column-train-20261108-1" in new and all("20261108" in n for n in new)
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="vertebral-column-tune-20261108-1")
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    configs = {e["EndpointConfigName"] for e in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert configs == {"vertebral-column-epc-20261101-1", "vertebral-column-epc-20261108-1"}
    endpoint = sm.describe_endpoint(EndpointName="vertebral-column")  # updated in place: CreateEndpoint was refused, UpdateEndpoint ran
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "vertebral-column-epc-20261108-1")
    assert len(sm.list_model_packages(ModelPackageGroupName="vertebral-column")["ModelPackageSummaryList"]) == 2
    s3 = _s3(aws_target)
    assert _lines(s3, f"vertebral_column/transform/ds={ds2}/test/test.csv.out")  # this date's predictions, by this date's job
    assert len(boto3.client("glue", endpoint_url=aws_target, region_name="us-east-1").get_job_runs(JobName="vertebral-column-etl")["JobRuns"]) == 2


def test_a_bad_request_is_rejected_before_any_call(aws_target, spec):
    """The request task builds and validates; a request AWS would refuse never reaches an operator."""
    from gated_ml import job_requests as jr
    from gated_ml.errors import RequestValidationError

    sm = boto3.client("sagemaker", endpoint_url=aws_target, region_name="us-east-1")
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
