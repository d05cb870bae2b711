"""The local target runs training requests as SageMaker does: script mode through the SageMaker training toolkit.

The probe entry point records what it was handed (argv, the SM_* environment, the folders);
the tests hold that against the rendering the toolkit gives the same request, against the
concrete rendering AWS containers give (lists as Python reprs, an empty dict as ""), and
check the job's end states: Completed, Failed with the failure file's reason, and Stopped
past its MaxRuntimeInSeconds.
"""

import io
import json
import subprocess
import tarfile
import time

import pytest

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import JobFailed, ResourceInUse
from gated_ml.lake import local_path
from gated_ml.local import training_toolkit
from gated_ml.local.control_plane import ControlPlane
from gated_ml.local.training import KIND, run_training_job
from gated_ml.spec import PROJECT_ROOT
from gated_ml.stages.code import _deterministic_tar, package_code
from gated_ml.stages.training import training_result

PROBE = """
import json, os, signal, sys, time
model_dir = os.environ["SM_MODEL_DIR"]
hps = json.loads(os.environ["SM_HPS"])
seen = {
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
    "channels": {c: sorted(os.listdir(os.environ["SM_CHANNEL_" + c.upper()])) for c in json.loads(os.environ["SM_CHANNELS"])},
    "hyperparameters_json": json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json"))),
    "cwd_files": sorted(os.listdir(".")),
    "pid": os.getpid(),
}
json.dump(seen, open(os.path.join(model_dir, "seen.json"), "w"))
if hps.get("fail") == "yes":
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("ValueError: the probe was asked to fail")
    sys.exit(3)
if hps.get("fail") == "silently":
    sys.exit(4)
if hps.get("ignore_sigterm"):
    def saved(*_):
        open(os.path.join(model_dir, "saved-on-sigterm"), "w").write("checkpoint")
    signal.signal(signal.SIGTERM, saved)
time.sleep(hps.get("sleep", 0))
print("validation:logloss=0.5")
print("validation:logloss=0.25")  # the final value is the last one logged
print("validation:auc=9.5e-1")
"""


def _upload_code(spec, env, files):
    uri = jr.locations(spec, env).code("probe") + "sourcedir.tar.gz"
    storage.write(uri, _deterministic_tar({k: v.encode() for k, v in files.items()}))
    return uri


def _seed_features(spec, env, run):
    for split in ("train", "validation"):
        storage.write(jr.locations(spec, env).features(run.ds, split) + f"{split}.csv", "class,x\nNormal,1\n")


@pytest.fixture
def probe_request(lake, spec, env, run):
    _seed_features(spec, env, run)
    code = _upload_code(spec, env, {"train.py": PROBE})
    return jr.training_job(spec, env, run, code)


def _model_files(describe):
    with tarfile.open(local_path(describe["ModelArtifacts"]["S3ModelArtifacts"])) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _seen(describe):
    return json.loads(_model_files(describe)["seen.json"])


def _toolkit_rendering(job_dir, name):
    """What the toolkit's own Environment renders for the job staged in ``job_dir`` (a fresh process: its paths are set at import)."""
    code = "import json; from sagemaker_training import environment as e; env = e.Environment(); print(json.dumps([env.to_cmd_args(), env.to_env_vars()]))"
    out = subprocess.run(
        [training_toolkit.TRAIN_COMMAND[0], "-c", code],
        env=training_toolkit.container_environ(job_dir, name, "arn"),
        capture_output=True,
        text=True,
        check=True,
    )
    argv, env = json.loads(out.stdout.strip().splitlines()[-1])
    return argv, env


def _gone(pid, within=3.0):
    """The process ended (a zombie waiting for init to reap it counts as ended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _argv_value(argv, name):
    return argv[argv.index(f"--{name}") + 1]


def test_the_script_gets_the_toolkits_rendering_of_every_hyperparameter(probe_request):
    probe_request["HyperParameters"]["colours"] = json.dumps({"hue": ["red", "blue"], "tone": "dark"})
    describe = run_training_job(probe_request, echo=False)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    seen = _seen(describe)
    argv, env = seen["argv"], seen["env"]
    # what AWS's containers hand the script: decoded JSON rendered back with str() / k=v
    assert _argv_value(argv, "label_classes") == "['Normal', 'Abnormal']"
    assert _argv_value(argv, "categorical") == ""
    assert _argv_value(argv, "colours") == "hue=['red', 'blue'],tone=dark"
    assert _argv_value(argv, "max_depth") == "3" and _argv_value(argv, "eta") == "0.1" and _argv_value(argv, "target") == "class"
    assert argv[::2] == sorted(argv[::2]) and not any(a.startswith("--sagemaker_") for a in argv)
    # SM_HPS keeps the decoded values typed: what train.py reads
    hps = json.loads(env["SM_HPS"])
    assert hps["label_classes"] == ["Normal", "Abnormal"] and hps["categorical"] == {} and hps["colours"]["hue"] == ["red", "blue"]
    assert hps["max_depth"] == 3 and hps["eta"] == 0.1 and hps["target"] == "class" and "sagemaker_program" not in hps
    assert env["SM_HP_LABEL_CLASSES"] == '["Normal","Abnormal"]' and env["SM_HP_MAX_DEPTH"] == "3" and env["SM_HP_TARGET"] == "class"

    # and exactly what the toolkit itself renders for this request's config, nothing of our own
    job_dir = ControlPlane().work_dir(KIND, describe["TrainingJobName"])
    toolkit_argv, toolkit_env = _toolkit_rendering(job_dir, describe["TrainingJobName"])
    assert argv == toolkit_argv
    assert {k: env.get(k) for k in toolkit_env} == toolkit_env


def test_platform_layout_channels_and_final_metrics(probe_request):
    describe = run_training_job(probe_request, echo=False)
    name = describe["TrainingJobName"]
    assert describe["TrainingJobStatus"] == "Completed" and describe["SecondaryStatus"] == "Completed"
    assert describe["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://gated-ml-lake/vertebral_column/models/{name}/output/model.tar.gz"
    seen = _seen(describe)
    job_dir = ControlPlane().work_dir(KIND, name)
    assert seen["env"]["SM_MODEL_DIR"] == str(job_dir / "model")  # /opt/ml is the job folder
    assert json.loads(seen["env"]["SM_CHANNELS"]) == ["train", "validation"] and seen["env"]["SM_CURRENT_HOST"] == "algo-1"
    assert seen["channels"] == {"train": ["train.csv"], "validation": ["validation.csv"]}
    assert seen["hyperparameters_json"] == probe_request["HyperParameters"]  # the request's strings, sagemaker_* included
    assert "train.py" in seen["cwd_files"]
    metrics = {m["MetricName"]: m["Value"] for m in describe["FinalMetricDataList"]}
    assert metrics == {"validation:logloss": 0.25, "validation:auc": 0.95}
    assert [t["Status"] for t in describe["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]


def test_failure_reason_comes_from_the_failure_file(probe_request):
    probe_request["HyperParameters"]["fail"] = "yes"
    describe = run_training_job(probe_request, echo=False)
    assert describe["TrainingJobStatus"] == "Failed" and describe["SecondaryStatus"] == "Failed"
    assert describe["FailureReason"] == "AlgorithmError: ValueError: the probe was asked to fail, exit code: 1"
    assert "ModelArtifacts" not in describe
    with pytest.raises(JobFailed, match="the probe was asked to fail"):
        training_result(None, None, None, probe_request, describe)


def test_a_script_that_writes_no_failure_file_gets_the_toolkits(probe_request):
    probe_request["HyperParameters"]["fail"] = "silently"
    describe = run_training_job(probe_request, echo=False)
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 4\n")
    assert "--fail silently" in describe["FailureReason"]  # the toolkit's failure file names the command it ran


def test_a_job_over_its_max_runtime_is_stopped(probe_request):
    probe_request["HyperParameters"]["sleep"] = "30"
    probe_request["StoppingCondition"]["MaxRuntimeInSeconds"] = 2
    began = time.monotonic()
    describe = run_training_job(probe_request, echo=False)
    assert time.monotonic() - began < 15  # stopped, not run to its end
    assert describe["TrainingJobStatus"] == "Stopped" and describe["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "FailureReason" not in describe and describe["FinalMetricDataList"] == []
    transitions = describe["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Stopping", "MaxRuntimeExceeded"]
    assert "MaxRuntimeInSeconds" in transitions[-1]["StatusMessage"]
    seen = _seen(describe)  # what the model folder held is uploaded, as SageMaker does for a stopped job
    assert _gone(seen["pid"])  # the script is stopped too, not only the toolkit
    with pytest.raises(JobFailed, match=r"MaxRuntimeExceeded.*MaxRuntimeInSeconds=2"):
        training_result(None, None, None, probe_request, describe)


def test_a_stopped_script_gets_its_grace_period_then_is_killed(probe_request, monkeypatch):
    monkeypatch.setattr(training_toolkit, "STOP_GRACE_SECONDS", 1.0)
    probe_request["HyperParameters"].update(sleep="30", ignore_sigterm="1")
    probe_request["StoppingCondition"]["MaxRuntimeInSeconds"] = 2
    began = time.monotonic()
    describe = run_training_job(probe_request, echo=False)
    assert describe["SecondaryStatus"] == "MaxRuntimeExceeded" and time.monotonic() - began < 15  # killed, not slept out
    files = _model_files(describe)
    assert files["saved-on-sigterm"] == b"checkpoint"  # SIGTERM first, so the script could save
    assert _gone(json.loads(files["seen.json"])["pid"])  # then SIGKILL


def test_a_completed_job_is_reused_never_run_twice(probe_request):
    first = run_training_job(probe_request, echo=False)
    again = run_training_job(probe_request, echo=False)
    assert again["TrainingEndTime"] == first["TrainingEndTime"]
    changed = dict(probe_request, HyperParameters={**probe_request["HyperParameters"], "eta": "0.3"})
    with pytest.raises(ResourceInUse, match="different request"):
        run_training_job(changed, echo=False)


def _real_job(spec, env, run, hyperparameters=None):
    import pandas as pd

    raw = (PROJECT_ROOT / spec.source.path).read_text()
    data = pd.read_csv(io.StringIO(raw.split("@data")[1]), header=None)
    data.columns = [c.name for c in spec.columns]
    data = data[[spec.target.column] + [c.name for c in spec.feature_columns]]
    loc = jr.locations(spec, env)
    storage.write(loc.features(run.ds, "train") + "train.csv", data.iloc[::2].to_csv(index=False))
    storage.write(loc.features(run.ds, "validation") + "validation.csv", data.iloc[1::2].to_csv(index=False))
    req = jr.training_job(spec, env, run, package_code(spec, env)["sourcedir_uri"])
    req["HyperParameters"].update(hyperparameters or {})
    return data, run_training_job(req, echo=False)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("label_classes", "Normal,Abnormal", "hyperparameter label_classes must be a JSON list"),
        pytest.param("max_depth", "deep", "hyperparameter max_depth must be a JSON int", marks=pytest.mark.slow),
        pytest.param("target", "Class", "hyperparameter target 'Class' is not a column of the train channel", marks=pytest.mark.slow),
        pytest.param("categorical", '{"pelvic_tilt": "low"}', "hyperparameter categorical['pelvic_tilt'] must be a JSON list", marks=pytest.mark.slow),
    ],
)
def test_a_hyperparameter_train_py_cannot_accept_fails_the_job_naming_it(lake, spec, env, run, name, value, reason):
    _, describe = _real_job(spec, env, run, {name: value})
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"].startswith(f"AlgorithmError: ValueError: {reason}") and describe["FailureReason"].endswith(", exit code: 1")


@pytest.mark.slow
def test_real_entry_point_trains_and_its_artifact_has_no_pickle(lake, spec, env, run):
    data, describe = _real_job(spec, env, run)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    files = _model_files(describe)
    assert set(files) == {"xgboost-model.json", "preprocessor.json", "model_meta.json"}
    meta = json.loads(files["model_meta.json"])
    assert meta["label_classes"] == ["Normal", "Abnormal"] and meta["feature_columns"] == [c.name for c in spec.feature_columns]
    assert meta["params"]["max_depth"] == 3 and meta["params"]["eta"] == 0.1  # the spec's hyperparameters reached the booster
    pre = json.loads(files["preprocessor.json"])
    train_median = float(data.iloc[::2]["pelvic_tilt"].median())
    assert pre["numeric"]["pelvic_tilt"]["median"] == pytest.approx(train_median)  # fitted on the training split only
    metrics = {m["MetricName"]: m["Value"] for m in describe["FinalMetricDataList"]}
    assert metrics["validation:auc"] > 0.8 and "validation:logloss" in metrics


def test_network_isolation_runs_the_code_from_its_channel_and_cannot_download_it_from_s3(lake, spec, env, run):
    isolated = spec.model_validate({**spec.model_dump(), "security": {**spec.security.model_dump(), "network_isolation": True}})
    _seed_features(isolated, env, run)
    code = _upload_code(isolated, env, {"train.py": PROBE})
    request = jr.training_job(isolated, env, run, code)
    assert request["HyperParameters"]["sagemaker_submit_directory"].startswith("/opt/ml/input/data/code/")
    describe = run_training_job(request, echo=False)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    assert "train.py" in _seen(describe)["cwd_files"]

    # the code left in S3 while the network is isolated: the container cannot fetch it, and the job fails saying so
    from_s3 = {
        **request,
        "TrainingJobName": request["TrainingJobName"] + "-s3",
        "HyperParameters": {**request["HyperParameters"], "sagemaker_submit_directory": code},
    }
    failed = run_training_job(from_s3, echo=False)
    assert failed["TrainingJobStatus"] == "Failed"
    assert "EnableNetworkIsolation blocks S3" in failed["FailureReason"] and code in failed["FailureReason"]
