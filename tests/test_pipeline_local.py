"""The vertebral_column DAG end to end on the local target, through Airflow's dag.test()."""

import datetime as dt
import json

import pytest

from conftest import ROOT, write_spec
from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.lake import local_path

pytestmark = pytest.mark.e2e
DS = "2026-11-01"
GOOD = (ROOT / "include" / "pipelines" / "vertebral_column.yaml").read_text()
ARFF = ROOT / "include" / "data" / "vertebral_column" / "column_2C_weka.arff"


def _run_dag(pipeline="vertebral_column", ds=DS, conf=None):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dr = bag.dags[pipeline].test(logical_date=dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC), run_conf=conf)
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _replay(pipeline="vertebral_column"):
    """The upstream system: every replay batch of the pipeline lands in the test's lake."""
    from gated_ml import replay
    from gated_ml.spec import load_pipeline
    from gated_ml.targets.local import LocalTarget

    spec = load_pipeline(pipeline)
    dates = replay.batch_dates(spec)
    return replay.land(spec, LocalTarget().environment(), dates[0], dates[-1])


def _lines(uri: str) -> set[str]:
    return set(storage.read_text(uri).splitlines())


def test_full_run(airflow_db, lake, spec):
    from gated_ml.local.control_plane import ControlPlane
    from gated_ml.local.hosting import describe_endpoint
    from gated_ml.targets.local import LocalTarget

    assert len(_replay()) == 4
    dr, states = _run_dag()
    assert dr.state == "success", states
    assert set(states.values()) == {"success"}
    loc = jr.locations(spec, LocalTarget().environment())

    # the run of the first date trains on its own batch: the history load of 217 of the 310 rows
    assert len(storage.read_parquet(loc.curated(DS))) == 217
    window = json.loads(storage.read_text(loc.features(DS) + "window.json"))
    assert window["batches"] == [DS] and window["first_ds"] == window["last_ds"] == DS and sum(window["rows"].values()) == 217
    sizes = {s: len(storage.read_text(loc.features(DS, s) + f"{s}.csv").splitlines()) for s in ("train", "validation", "test")}
    assert sizes == {"train": window["rows"]["train"] + 1, "validation": window["rows"]["validation"] + 1, "test": window["rows"]["test"]}  # headers
    n_test, n_validation = window["rows"]["test"], window["rows"]["validation"]

    control = ControlPlane()
    tuning = next((lake / "_control" / "tuning-jobs").glob("*.json"))
    tuning = json.loads(tuning.read_text())
    assert tuning["TrainingJobStatusCounters"] == {"Completed": 10, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    model = json.loads(next((lake / "_control" / "models").glob("*.json")).read_text())
    assert local_path(model["PrimaryContainer"]["ModelDataUrl"]).is_file()

    out = storage.read_text(loc.transform(DS) + "test/test.csv.out").splitlines()
    assert len(storage.read_text(loc.transform(DS) + "validation/validation.csv.out").splitlines()) == n_validation
    assert len(out) == n_test and all(line.split(",")[0] in ("Normal", "Abnormal") for line in out)

    report = json.loads(storage.read_text(loc.evaluation(DS) + "metrics.json"))
    assert report["decision"] == "Approved"
    assert report["metrics"]["roc_auc"] >= 0.85
    assert sum(report["metrics"]["confusion_matrix"].values()) == n_test
    assert report["window"]["batches"] == [DS] and report["window"]["rows"] == window["rows"]
    asked = json.loads(storage.read_text(loc.runs(DS) + "params.json"))  # what check_params recorded: the spec's own run
    assert asked["dag_run_id"] == dr.run_id and asked["overrides"] == {} and report["params"] == {"values": asked["params"], "overrides": {}}

    for gate in ("landing", "curated", "splits", "transform_input", "predictions"):
        assert json.loads(storage.read_text(loc.quality(DS) + f"{gate}.json"))["success"] is True
        assert local_path(loc.quality(DS) + f"data_docs/{gate}/index.html").is_file()

    endpoint = describe_endpoint("vertebral-column", control)
    assert endpoint["EndpointStatus"] == "InService"
    smoke = next(ti for ti in dr.get_task_instances() if ti.task_id == "deployment.smoke_test_endpoint")
    assert smoke.state == "success"  # the endpoint agreed with batch transform on the smoke-test rows

    # the report: metrics, plots, the registry and the view in the Airflow UI
    assert report["registry_version"] == 1 and report["threshold"] == 0.5 and report["metrics"]["pr_auc"] > 0.5
    for plot in ("roc_curve.png", "pr_curve.png", "confusion_matrix.png", "feature_importance.png"):
        assert storage.read_bytes(loc.evaluation(DS) + plot).startswith(b"\x89PNG")
    import airflow_api
    from gated_ml.evaluation import registry
    from gated_ml.evaluation.report_sections import PROFILE_IMAGES

    champion = registry.champion(spec, LocalTarget().environment())
    assert champion["version"] == 1 and champion["decision"] == "Approved" and champion["data"]["files"]
    assert champion["data"]["window"]["batches"] == [DS]
    profile = json.loads(storage.read_text(loc.profile(DS) + "profile.json"))  # the data section, written after the split
    assert profile["batch"]["rows"] == 217 and profile["window"]["rows"] == sum(window["rows"].values()) and profile["drift"]["dates"] == [DS]
    assert all(storage.read_bytes(loc.profile(DS) + f"{name}.png").startswith(b"\x89PNG") for name in PROFILE_IMAGES)
    ui, report = airflow_api.client(), f"/gated-ml/reports/vertebral_column/{dr.run_id}"  # the API server's app, logged in
    page = ui.get(report)
    assert page.status_code == 200 and "Model gate: Approved" in page.text and "roc_auc" in page.text and "<h2>Data</h2>" in page.text
    assert ui.get(f"{report}/roc_curve.png").content.startswith(b"\x89PNG") and ui.get(f"{report}/profile/drift.png").content.startswith(b"\x89PNG")

    # the next week: the window grows by its batch, and every row keeps its split
    nxt = "2026-11-08"
    _, states = _run_dag(ds=nxt)
    assert states["features.split"] == "success" and states["evaluate"] == "success", states
    grown = json.loads(storage.read_text(loc.features(nxt) + "window.json"))
    assert grown["batches"] == [DS, nxt] and sum(grown["rows"].values()) == 217 + 31
    first_test, next_test = _lines(loc.features(DS, "test") + "test.csv"), _lines(loc.features(nxt, "test") + "test.csv")
    next_train = {line.split(",", 1)[1] for line in _lines(loc.features(nxt, "train") + "train.csv")}
    assert first_test <= next_test  # an earlier test row is a test row still, never a training row
    assert not {line.split(",", 1)[1] for line in first_test} & next_train
    assert states["deployment.smoke_test_endpoint"] == "success"  # approved (ROC AUC 0.93 on its 28 test rows) and deployed
    assert registry.champion(spec, LocalTarget().environment())["ds"] == nxt

    # a re-run of the first date, told not to deploy (a trigger-form param): registered again (the same version), never deployed
    _, states = _run_dag(ds=DS, conf={"deploy": False})
    rerun = json.loads(storage.read_text(loc.evaluation(DS) + "metrics.json"))
    assert rerun["params"]["overrides"] == {"deploy": False}
    assert states["evaluate"] == "success" and states["batch_transform.transform_champion"] == "success"
    assert states["deployment.deploy_endpoint"] == "skipped" and states["deployment.smoke_test_endpoint"] == "skipped"
    assert registry.champion(spec, LocalTarget().environment())["ds"] == nxt
    assert [v["ds"] for v in registry.versions(spec, LocalTarget().environment())].count(DS) == 1


@pytest.mark.parametrize(
    "case, edit, batch, failed_task, message",
    [
        (
            "no batch arrives",
            lambda s: s.replace("arrival: {timeout_minutes: 60, poke_seconds: 30}", "arrival: {timeout_minutes: 0.05, poke_seconds: 1}"),
            None,
            "ingest.wait_for_batch",
            f"no batch arrived at s3://gated-ml-lake/vertebral_column/landing/ds={DS}/column_2C_weka.arff within 0.05 minutes",
        ),
        ("wrong delimiter", lambda s: s, "semicolons", "ingest.landing_gate", "gate vertebral_column.landing: FAILED"),
        (
            "unknown column in the spec",
            lambda s: s.replace("  - {name: class, type: string}", "  - {name: bone_density, type: double}\n  - {name: class, type: string}"),
            "good",
            "ingest.landing_gate",
            "bone_density",
        ),
    ],
)
def test_bad_input_stops_the_dag_and_writes_nothing_curated(airflow_db, lake, tmp_path, monkeypatch, case, edit, batch, failed_task, message, capfd):
    data = ARFF.read_bytes()
    head, body = data.split(b"@data")
    batches = {"good": data, "semicolons": head + b"@data" + body.replace(b",", b";")}
    if batch:  # what upstream delivered for the day
        storage.write(f"s3://gated-ml-lake/vertebral_column/landing/ds={DS}/column_2C_weka.arff", batches[batch])
    write_spec(tmp_path / "specs", edit(GOOD))
    monkeypatch.setenv("AIRFLOW__GATED_ML__SPEC_DIR", str(tmp_path / "specs"))
    monkeypatch.setenv("AIRFLOW__GATED_ML__GX_DIR", str(tmp_path / "gx"))  # suites generated from this spec
    monkeypatch.setenv("AIRFLOW__GATED_ML__DEFERRABLE", "false")  # dag.test runs a trigger inline, without its time-out

    dr, states = _run_dag()
    assert dr.state == "failed"
    assert states[failed_task] == "failed"
    ran = {t for t, s in states.items() if s == "success"}
    assert ran <= {"check_params", "package_code", "ingest.wait_for_batch"}  # nothing after the failure ran
    out, err = capfd.readouterr()
    assert message in out + err  # the task log says why
    curated_zone = lake / "gated-ml-lake" / "vertebral_column" / "curated"
    assert not curated_zone.exists()


@pytest.mark.parametrize("pipeline, metric, floor", [("wine_quality", "within_1_0", 0.8), ("car_evaluation", "macro_f1", 0.8)])
def test_the_other_bundled_datasets_need_only_their_spec(airflow_db, lake, pipeline, metric, floor):
    """Regression (wine) and multiclass with ordinal categoricals (car): the same code, another spec."""
    from gated_ml.local.hosting import describe_endpoint
    from gated_ml.spec import load_pipeline
    from gated_ml.targets.local import LocalTarget

    _replay(pipeline)
    dr, states = _run_dag(pipeline, conf={"max_tuning_jobs": 4})  # the trigger form's param: a shorter tuning job than the spec's 10
    assert dr.state == "success", {k: v for k, v in states.items() if v != "success"}
    spec = load_pipeline(pipeline)
    report = json.loads(storage.read_text(jr.locations(spec, LocalTarget().environment()).evaluation(DS) + "metrics.json"))
    assert report["params"]["overrides"] == {"max_tuning_jobs": 4}
    tuning = json.loads(next((lake / "_control" / "tuning-jobs").glob("*.json")).read_text())
    assert tuning["TrainingJobStatusCounters"]["Completed"] == 4
    assert report["problem_type"] == spec.problem_type and report["decision"] == "Approved"
    assert report["metrics"][metric] >= floor
    assert describe_endpoint(spec.slug)["EndpointStatus"] == "InService"
