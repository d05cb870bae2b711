"""The local target runs training requests with the SageMaker training container contract."""

import io
import json
import tarfile

import pytest

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import ResourceInUse
from gated_ml.lake import local_path
from gated_ml.local.training import run_training_job
from gated_ml.spec import PROJECT_ROOT
from gated_ml.stages.code import _deterministic_tar, package_code

PROBE = """
import json, os, sys
model_dir = os.environ["SM_MODEL_DIR"]
seen = {
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
    "channels": {c: sorted(os.listdir(os.environ["SM_CHANNEL_" + c.upper()])) for c in json.loads(os.environ["SM_CHANNELS"])},
    "hyperparameters_json": json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json"))),
    "cwd_files": sorted(os.listdir(".")),
}
json.dump(seen, open(os.path.join(model_dir, "seen.json"), "w"))
if os.environ.get("SM_HP_FAIL") == "yes":
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("ValueError: the probe was asked to fail")
    sys.exit(3)
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


def test_contract_env_channels_hyperparameters_and_metrics(probe_request):
    describe = run_training_job(probe_request, echo=False)
    assert describe["TrainingJobStatus"] == "Completed"
    art = describe["ModelArtifacts"]["S3ModelArtifacts"]
    assert art == f"s3://gated-ml-lake/vertebral_column/models/{probe_request['TrainingJobName']}/output/model.tar.gz"
    seen = json.loads(_model_files(describe)["seen.json"])
    env = seen["env"]
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert seen["channels"] == {"train": ["train.csv"], "validation": ["validation.csv"]}
    assert env["SM_HP_MAX_DEPTH"] == "3" and env["SM_NUM_GPUS"] == "0" and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HPS"])["eta"] == "0.1"
    assert "sagemaker_program" not in seen["hyperparameters_json"] and seen["hyperparameters_json"]["num_round"] == "200"
    assert ["--max_depth", "3"] == seen["argv"][seen["argv"].index("--max_depth") :][:2]
    assert "train.py" in seen["cwd_files"]
    metrics = {m["MetricName"]: m["Value"] for m in describe["FinalMetricDataList"]}
    assert metrics == {"validation:logloss": 0.25, "validation:auc": 0.95}


def test_failure_reason_comes_from_the_failure_file(probe_request):
    probe_request["HyperParameters"]["fail"] = "yes"
    describe = run_training_job(probe_request, echo=False)
    assert describe["TrainingJobStatus"] == "Failed"
    assert "the probe was asked to fail" in describe["FailureReason"] and "exit code 3" in describe["FailureReason"]
    assert "ModelArtifacts" not in describe


def test_a_completed_job_is_reused_never_run_twice(probe_request):
    first = run_training_job(probe_request, echo=False)
    again = run_training_job(probe_request, echo=False)
    assert again["TrainingEndTime"] == first["TrainingEndTime"]
    changed = dict(probe_request, HyperParameters={**probe_request["HyperParameters"], "eta": "0.3"})
    with pytest.raises(ResourceInUse, match="different request"):
        run_training_job(changed, echo=False)


@pytest.mark.slow
def test_real_entry_point_artifact_has_no_pickle(lake, spec, env, run):
    import pandas as pd

    raw = (PROJECT_ROOT / spec.source.path).read_text()
    data = pd.read_csv(io.StringIO(raw.split("@data")[1]), header=None)
    data.columns = [c.name for c in spec.columns]
    data = data[[spec.target.column] + [c.name for c in spec.feature_columns]]
    loc = jr.locations(spec, env)
    storage.write(loc.features(run.ds, "train") + "train.csv", data.iloc[::2].to_csv(index=False))
    storage.write(loc.features(run.ds, "validation") + "validation.csv", data.iloc[1::2].to_csv(index=False))
    code = package_code(spec, env)["sourcedir_uri"]
    describe = run_training_job(jr.training_job(spec, env, run, code), echo=False)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    files = _model_files(describe)
    assert set(files) == {"xgboost-model.json", "preprocessor.json", "model_meta.json"}
    meta = json.loads(files["model_meta.json"])
    assert meta["label_classes"] == ["Normal", "Abnormal"] and meta["feature_columns"] == [c.name for c in spec.feature_columns]
    pre = json.loads(files["preprocessor.json"])
    train_median = float(data.iloc[::2]["pelvic_tilt"].median())
    assert pre["numeric"]["pelvic_tilt"]["median"] == pytest.approx(train_median)  # fitted on the training split only
    assert {m["MetricName"] for m in describe["FinalMetricDataList"]} >= {"validation:auc", "validation:logloss"}
