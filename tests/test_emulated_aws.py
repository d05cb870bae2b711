"""Contract tests of the AWS emulator (:mod:`gated_ml.emulated_aws`): what it adds to moto behaves as AWS does.

Each test talks to one emulator process over HTTP with stock boto3 clients, as the provider's
operators do. The jobs run a tiny script-mode entry point (training writes a model that
answers a constant, chosen by a hyperparameter), so the tests are quick and the answers tell
which model serves.
"""

import io
import json
import tarfile
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from gated_ml.stages.code import _deterministic_tar

pytestmark = pytest.mark.slow
BUCKET = "emulator-contract"
ROLE = "arn:aws:iam::123456789012:role/contract"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
TRAIN = """
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--answer", default="1")
p.add_argument("--sleep", type=float, default=0)
p.add_argument("--exit", type=int, default=0)
a, _ = p.parse_known_args()
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv")).read().splitlines()
time.sleep(a.sleep)
if a.exit:
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("the script was told to fail")
    sys.exit(a.exit)
json.dump({"answer": a.answer}, open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w"))
print(f"rows={len(rows)}")
print(f"validation:auc=0.{a.answer}")
"""
INFERENCE = """
import json, os
def model_fn(model_dir):
    return json.load(open(os.path.join(model_dir, "model.json")))
def input_fn(body, content_type):
    if content_type != "text/csv":
        raise ValueError(f"content type {content_type} is not supported")
    return [line for line in body.splitlines() if line]  # text/csv arrives decoded, as the container hands it
def predict_fn(rows, model):
    if any(r == "sleep" for r in rows):
        import time; time.sleep(60)
    if any(r == "boom" for r in rows):
        raise RuntimeError("the model failed")
    return [model["answer"]] * len(rows)
def output_fn(predictions, accept):
    return "".join(p + "\\n" for p in predictions), "text/csv"
"""
GLUE = """
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if args.get("--fail"):
    print("ETL failed: told to", file=sys.stderr); sys.exit(2)
rows = open(args["--source_uri"][len("file://"):]).read().splitlines()
out = args["--output_uri"][len("file://"):]
import os; os.makedirs(out, exist_ok=True)
open(out + "part-0.csv", "w").write("\\n".join(r.upper() for r in rows))
open(out + "_SUCCESS", "w").write("")
"""


def _tarball(files: dict[str, str]) -> bytes:
    return _deterministic_tar({name: text.encode() for name, text in files.items()})


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    from gated_ml.emulated_aws import server

    folder = tmp_path_factory.mktemp("emulator")
    emulator = server.start(folder / "staging", folder / "emulator.log")
    kw = {"endpoint_url": emulator.url, "region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    s3 = boto3.client("s3", **kw)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=_tarball({"train.py": TRAIN, "inference.py": INFERENCE}))
    s3.put_object(Bucket=BUCKET, Key="data/train/train.csv", Body=b"1,2\n3,4\n5,6\n")
    s3.put_object(Bucket=BUCKET, Key="glue/etl.py", Body=GLUE.encode())
    s3.put_object(Bucket=BUCKET, Key="raw/batch.csv", Body=b"a,b\nc,d\n")
    yield emulator
    server.stop(emulator)


@pytest.fixture(scope="module")
def clients(emulator):
    kw = {"endpoint_url": emulator.url, "region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    return {s: boto3.client(s, **kw) for s in ("s3", "sagemaker", "sagemaker-runtime", "glue")}


@pytest.fixture(autouse=True)
def no_faults_left(emulator):
    yield
    emulator.control("faults", "DELETE")


def _training(name: str, **hps) -> dict:
    return {
        "TrainingJobName": name,
        "HyperParameters": {"sagemaker_program": "train.py", "sagemaker_submit_directory": f"s3://{BUCKET}/code/sourcedir.tar.gz", **hps},
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}],
        },
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def _wait(describe, key: str, done=("Completed", "Failed", "Stopped", "InService", "SUCCEEDED", "FAILED", "STOPPED"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = describe()
        if answer[key] in done:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"{key} still {answer[key]} after {timeout} s")


def _train(clients, name: str, **hps) -> dict:
    sm = clients["sagemaker"]
    sm.create_training_job(**_training(name, **hps))
    return _wait(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")


def _model(clients, name: str, job: dict) -> None:
    container = {
        "Image": IMAGE,
        "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/code/sourcedir.tar.gz"},
    }
    clients["sagemaker"].create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)


def _config(clients, name: str, model: str) -> None:
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    clients["sagemaker"].create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])


def _invoke(clients, endpoint: str, body: bytes = b"1,2\n3,4\n") -> str:
    return clients["sagemaker-runtime"].invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["Body"].read().decode()


# --- training ---------------------------------------------------------------------------------
def test_a_training_job_runs_in_progress_then_completed_with_its_model_and_metrics_in_s3(clients):
    sm = clients["sagemaker"]
    sm.create_training_job(**_training("contract-train", answer="7", sleep="1"))
    assert sm.describe_training_job(TrainingJobName="contract-train")["TrainingJobStatus"] == "InProgress"  # not moto's Completed at creation
    job = _wait(lambda: sm.describe_training_job(TrainingJobName="contract-train"), "TrainingJobStatus")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["FinalMetricDataList"][0]["MetricName"] == "validation:auc" and job["FinalMetricDataList"][0]["Value"] == pytest.approx(0.7)
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == _training("x")["AlgorithmSpecification"]["MetricDefinitions"]  # moto's test:dcg undone
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/contract-train/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(clients["s3"].get_object(Bucket=BUCKET, Key=artifact.split("/", 3)[3])["Body"].read())) as tar:
        assert json.load(tar.extractfile("model.json")) == {"answer": "7"}


def test_a_failing_script_fails_the_job_with_its_reason_and_no_model(clients):
    job = _train(clients, "contract-train-fails", exit="3")
    assert job["TrainingJobStatus"] == "Failed"
    assert "the script was told to fail" in job["FailureReason"] and "ModelArtifacts" not in job


def test_a_missing_input_fails_the_job_naming_it(clients):
    request = _training("contract-train-no-input")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/data/nothing-here/"
    clients["sagemaker"].create_training_job(**request)
    job = _wait(lambda: clients["sagemaker"].describe_training_job(TrainingJobName="contract-train-no-input"), "TrainingJobStatus")
    assert job["TrainingJobStatus"] == "Failed" and f"s3://{BUCKET}/data/nothing-here/" in job["FailureReason"]


def test_a_duplicate_training_job_name_is_refused_and_the_first_job_is_kept(clients):
    first = _train(clients, "contract-train-dup", answer="2")
    with pytest.raises(ClientError) as refused:
        clients["sagemaker"].create_training_job(**_training("contract-train-dup", answer="3"))
    assert refused.value.response["Error"]["Code"] == "ResourceInUse"
    assert clients["sagemaker"].describe_training_job(TrainingJobName="contract-train-dup")["HyperParameters"] == first["HyperParameters"]


def test_stop_training_job_stops_a_running_job_and_refuses_a_finished_one(clients):
    sm = clients["sagemaker"]
    sm.create_training_job(**_training("contract-train-stop", sleep="60"))
    time.sleep(2)  # the script is running
    sm.stop_training_job(TrainingJobName="contract-train-stop")
    assert sm.describe_training_job(TrainingJobName="contract-train-stop")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = _wait(lambda: sm.describe_training_job(TrainingJobName="contract-train-stop"), "TrainingJobStatus", timeout=30)
    assert job["TrainingJobStatus"] == "Stopped" and "ModelArtifacts" not in job
    with pytest.raises(ClientError) as refused:
        sm.stop_training_job(TrainingJobName="contract-train-stop")
    assert refused.value.response["Error"]["Code"] == "ValidationException" and "Stopped" in refused.value.response["Error"]["Message"]


# --- tuning and transform ---------------------------------------------------------------------
def test_a_tuning_job_runs_its_trials_and_names_the_best_by_the_requests_metric(clients):
    sm, base = clients["sagemaker"], _training("unused")
    definition = {k: base[k] for k in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition")}
    definition["StaticHyperParameters"] = dict(base["HyperParameters"])
    config = {
        "Strategy": "Random",
        "RandomSeed": 1,
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
        "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "answer", "Values": ["3", "8"]}]},
    }
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="contract-tune", HyperParameterTuningJobConfig=config, TrainingJobDefinition=definition)
    running = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="contract-tune")
    assert running["HyperParameterTuningJobStatus"] == "InProgress" and "BestTrainingJob" not in running  # not moto's placeholder
    job = _wait(lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="contract-tune"), "HyperParameterTuningJobStatus")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    best = job["BestTrainingJob"]
    trials = sm.list_training_jobs(NameContains="contract-tune-", MaxResults=100)["TrainingJobSummaries"]  # a trial is a training job of the account
    scores = {t["TrainingJobName"]: sm.describe_training_job(TrainingJobName=t["TrainingJobName"])["FinalMetricDataList"][0]["Value"] for t in trials}
    assert len(scores) == job["TrainingJobStatusCounters"]["Completed"] >= 1
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:auc"
    assert best["TrainingJobName"] == max(scores, key=scores.get) and best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(scores.values())
    clients["s3"].head_object(Bucket=BUCKET, Key=f"models/{best['TrainingJobName']}/output/model.tar.gz")


def test_a_transform_job_writes_one_prediction_per_record_and_refuses_a_missing_model(clients):
    sm, s3 = clients["sagemaker"], clients["s3"]
    _model(clients, "contract-transform-model", _train(clients, "contract-transform-train", answer="4"))
    s3.put_object(Bucket=BUCKET, Key="batch/input.csv", Body=b"1,2\n3,4\n5,6\n")
    request = {
        "TransformJobName": "contract-transform",
        "ModelName": "contract-transform-model",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/batch-out/", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    sm.create_transform_job(**request)
    job = _wait(lambda: sm.describe_transform_job(TransformJobName="contract-transform"), "TransformJobStatus")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert s3.get_object(Bucket=BUCKET, Key="batch-out/input.csv.out")["Body"].read() == b"4\n4\n4\n"
    with pytest.raises(ClientError, match="Could not find model"):
        sm.create_transform_job(**{**request, "TransformJobName": "contract-transform-2", "ModelName": "contract-no-such-model"})
    with pytest.raises(ClientError) as duplicate:
        sm.create_transform_job(**request)
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"


def test_stop_transform_job_ends_its_model_server_and_the_job_stopped(clients):
    sm, s3 = clients["sagemaker"], clients["s3"]
    _model(clients, "contract-stop-transform-model", _train(clients, "contract-stop-transform-train"))
    s3.put_object(Bucket=BUCKET, Key="slow/input.csv", Body=b"sleep\n")
    sm.create_transform_job(
        TransformJobName="contract-stop-transform",
        ModelName="contract-stop-transform-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/slow/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/slow-out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    time.sleep(3)  # the model server is up and answering the slow record
    sm.stop_transform_job(TransformJobName="contract-stop-transform")
    job = _wait(lambda: sm.describe_transform_job(TransformJobName="contract-stop-transform"), "TransformJobStatus", timeout=30)
    assert job["TransformJobStatus"] == "Stopped"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="slow-out/")


# --- endpoints --------------------------------------------------------------------------------
def test_an_endpoint_serves_its_model_and_update_endpoint_switches_it(clients):
    sm = clients["sagemaker"]
    for answer in ("1", "2"):
        _model(clients, f"contract-model-{answer}", _train(clients, f"contract-ep-train-{answer}", answer=answer))
        _config(clients, f"contract-epc-{answer}", f"contract-model-{answer}")
    sm.create_endpoint(EndpointName="contract-ep", EndpointConfigName="contract-epc-1")
    assert sm.describe_endpoint(EndpointName="contract-ep")["EndpointStatus"] == "Creating"
    assert _wait(lambda: sm.describe_endpoint(EndpointName="contract-ep"), "EndpointStatus")["EndpointStatus"] == "InService"
    assert _invoke(clients, "contract-ep") == "1\n1\n"

    with pytest.raises(ClientError) as refused:  # the message the provider's operator falls back to UpdateEndpoint on
        sm.create_endpoint(EndpointName="contract-ep", EndpointConfigName="contract-epc-2")
    assert refused.value.response["Error"]["Message"].startswith("Cannot create already existing endpoint")

    sm.update_endpoint(EndpointName="contract-ep", EndpointConfigName="contract-epc-2")
    assert sm.describe_endpoint(EndpointName="contract-ep")["EndpointStatus"] == "Updating"
    done = _wait(lambda: sm.describe_endpoint(EndpointName="contract-ep"), "EndpointStatus")
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", "contract-epc-2")
    assert _invoke(clients, "contract-ep") == "2\n2\n"

    sm.update_endpoint(EndpointName="contract-ep", EndpointConfigName="contract-epc-1")  # the rollback path: back to the previous config
    assert _wait(lambda: sm.describe_endpoint(EndpointName="contract-ep"), "EndpointStatus")["EndpointConfigName"] == "contract-epc-1"
    assert _invoke(clients, "contract-ep") == "1\n1\n"

    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName="contract-ep", EndpointConfigName="contract-epc-none")
    with pytest.raises(ClientError, match="Cannot create already existing endpoint configuration"):
        _config(clients, "contract-epc-1", "contract-model-2")
    with pytest.raises(ClientError, match="Cannot create already existing model"):
        _model(clients, "contract-model-1", sm.describe_training_job(TrainingJobName="contract-ep-train-2"))

    # a model error reaches the client as the runtime's error, not as an answer
    with pytest.raises(ClientError) as failed:
        _invoke(clients, "contract-ep", b"boom\n")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 400
    with pytest.raises(ClientError) as missing:
        _invoke(clients, "contract-no-such-endpoint")
    assert missing.value.response["Error"]["Code"] == "ValidationError"

    sm.delete_endpoint(EndpointName="contract-ep")
    with pytest.raises(ClientError):
        _invoke(clients, "contract-ep")


def test_a_failed_update_leaves_the_previous_config_serving_and_a_failed_create_fails_the_endpoint(emulator, clients):
    sm = clients["sagemaker"]
    _model(clients, "contract-rb-model", _train(clients, "contract-rb-train", answer="6"))
    _config(clients, "contract-rb-epc-1", "contract-rb-model")
    _config(clients, "contract-rb-epc-2", "contract-rb-model")
    sm.create_endpoint(EndpointName="contract-rb", EndpointConfigName="contract-rb-epc-1")
    _wait(lambda: sm.describe_endpoint(EndpointName="contract-rb"), "EndpointStatus")
    emulator.arm_fault("UpdateEndpoint", kind="fail_job", message="the new variant did not pass its health check")
    sm.update_endpoint(EndpointName="contract-rb", EndpointConfigName="contract-rb-epc-2")
    time.sleep(0.5)
    after = _wait(lambda: sm.describe_endpoint(EndpointName="contract-rb"), "EndpointStatus")
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "contract-rb-epc-1")
    assert "the new variant did not pass its health check" in after["FailureReason"]
    assert _invoke(clients, "contract-rb") == "6\n6\n"
    sm.delete_endpoint(EndpointName="contract-rb")

    emulator.arm_fault("CreateEndpoint", kind="fail_job", message="no capacity")
    sm.create_endpoint(EndpointName="contract-rb-new", EndpointConfigName="contract-rb-epc-1")
    failed = _wait(lambda: sm.describe_endpoint(EndpointName="contract-rb-new"), "EndpointStatus")
    assert (failed["EndpointStatus"], failed["FailureReason"]) == ("Failed", "no capacity")
    with pytest.raises(ClientError, match="not InService"):
        _invoke(clients, "contract-rb-new")


# --- glue -------------------------------------------------------------------------------------
def _glue_job(clients, name: str, script: str = "etl.py") -> None:
    clients["glue"].create_job(Name=name, Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/glue/{script}", "PythonVersion": "3"})


def test_a_glue_job_run_runs_the_script_on_staged_data_and_publishes_its_output(clients):
    glue = clients["glue"]
    _glue_job(clients, "contract-etl")
    args = {"--source_uri": f"s3://{BUCKET}/raw/batch.csv", "--output_uri": f"s3://{BUCKET}/curated/"}
    run_id = glue.start_job_run(JobName="contract-etl", Arguments=args)["JobRunId"]
    assert glue.get_job_run(JobName="contract-etl", RunId=run_id)["JobRun"]["JobRunState"] == "RUNNING"
    run = _wait(lambda: glue.get_job_run(JobName="contract-etl", RunId=run_id)["JobRun"], "JobRunState")
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert clients["s3"].get_object(Bucket=BUCKET, Key="curated/part-0.csv")["Body"].read() == b"A,B\nC,D"
    assert {o["Key"] for o in clients["s3"].list_objects_v2(Bucket=BUCKET, Prefix="curated/")["Contents"]} == {"curated/part-0.csv", "curated/_SUCCESS"}

    failing = glue.start_job_run(JobName="contract-etl", Arguments={**args, "--fail": "yes"})["JobRunId"]
    run = _wait(lambda: glue.get_job_run(JobName="contract-etl", RunId=failing)["JobRun"], "JobRunState")
    assert run["JobRunState"] == "FAILED" and "ETL failed: told to" in run["ErrorMessage"]


def test_glue_update_job_replaces_the_definition_and_batch_stop_reports_unknown_runs(clients):
    glue = clients["glue"]
    _glue_job(clients, "contract-etl-update")
    update = {"Role": ROLE, "Command": {"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/glue/other.py"}, "DefaultArguments": {"--x": "1"}}
    glue.update_job(JobName="contract-etl-update", JobUpdate=update)
    job = glue.get_job(JobName="contract-etl-update")["Job"]
    assert job["Command"]["ScriptLocation"].endswith("/other.py") and job["DefaultArguments"] == {"--x": "1"}
    with pytest.raises(ClientError) as missing:
        glue.update_job(JobName="contract-no-such-job", JobUpdate=update)
    assert missing.value.response["Error"]["Code"] == "EntityNotFoundException"
    answer = glue.batch_stop_job_run(JobName="contract-etl-update", JobRunIds=["jr_unknown"])
    assert answer["SuccessfulSubmissions"] == [] and answer["Errors"][0]["JobRunId"] == "jr_unknown"


# --- faults -----------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["CreateTrainingJob", "CreateModel", "CreateEndpointConfig"])
def test_a_rejecting_fault_fires_exactly_once(emulator, clients, action):
    sm = clients["sagemaker"]
    job = _train(clients, f"contract-fault-base-{action.lower()}")
    calls = {
        "CreateTrainingJob": lambda n: sm.create_training_job(**_training(f"contract-fault-{n}")),
        "CreateModel": lambda n: _model(clients, f"contract-fault-model-{n}", job),
        "CreateEndpointConfig": lambda n: _config(clients, f"contract-fault-epc-{n}", f"contract-fault-model-{action.lower()}"),
    }
    if action == "CreateEndpointConfig":
        _model(clients, f"contract-fault-model-{action.lower()}", job)
    emulator.arm_fault(action)
    with pytest.raises(ClientError) as first:
        calls[action](f"{action.lower()}-1")
    assert first.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    calls[action](f"{action.lower()}-1")  # the retry, same name: nothing was created by the failed call
    fired = emulator.control("faults")
    assert [f["action"] for f in fired["fired"]] == [action] and fired["armed"] == []


def test_an_invoke_endpoint_fault_answers_model_error_once(emulator, clients):
    sm = clients["sagemaker"]
    _model(clients, "contract-fault-invoke-model", _train(clients, "contract-fault-invoke-train", answer="5"))
    _config(clients, "contract-fault-invoke-epc", "contract-fault-invoke-model")
    sm.create_endpoint(EndpointName="contract-fault-invoke", EndpointConfigName="contract-fault-invoke-epc")
    _wait(lambda: sm.describe_endpoint(EndpointName="contract-fault-invoke"), "EndpointStatus")
    emulator.arm_fault("InvokeEndpoint")
    with pytest.raises(ClientError) as first:
        _invoke(clients, "contract-fault-invoke")
    assert first.value.response["Error"]["Code"] == "ModelError" and first.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert _invoke(clients, "contract-fault-invoke") == "5\n5\n"
    sm.delete_endpoint(EndpointName="contract-fault-invoke")


def test_a_failing_job_fault_fails_the_next_job_only(emulator, clients):
    emulator.arm_fault("CreateTrainingJob", kind="fail_job", message="InternalServerError: injected")
    failed = _train(clients, "contract-fault-job-1")
    assert (failed["TrainingJobStatus"], failed["FailureReason"]) == ("Failed", "InternalServerError: injected")
    assert _train(clients, "contract-fault-job-2")["TrainingJobStatus"] == "Completed"


def test_a_fault_that_cannot_be_armed_is_refused(emulator):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.arm_fault("CreateModel", kind="fail_job")
    assert refused.value.code == 400 and "fail_job needs an action that starts a job" in refused.value.read().decode()


def test_the_emulator_refuses_another_moto_version():
    from gated_ml.emulated_aws.moto_backends import MOTO_VERSION, require_pinned_moto
    from gated_ml.errors import EmulatorMismatch

    require_pinned_moto(MOTO_VERSION)
    with pytest.raises(EmulatorMismatch, match=f"written against moto {MOTO_VERSION} but moto 5.3.0 is installed"):
        require_pinned_moto("5.3.0")
