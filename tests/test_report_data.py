"""The data section of the run report, and the login every view of the plugin requires.

The statistics are checked against figures worked out by hand; degenerate data is described,
never an error; the profile stage runs on a lake built by the real curated gate (GX) and
split, so the drift chart reads real gate records; the views are served by Airflow's own
API server app (its factory, the plugin mounted from the plugins folder, its auth manager).
"""

import datetime as dt
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import airflow_api
from conftest import ROOT
from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.evaluation import data_profile as dp
from gated_ml.evaluation.report_sections import PROFILE_IMAGES
from gated_ml.spec import load_pipeline

FIRST, SECOND, LATER = "2026-11-01", "2026-11-08", "2026-11-15"
RUN_ID = "manual__2026-11-08T00:00:00+00:00"
COLUMNS = ["pelvic_incidence", "pelvic_tilt", "lumbar_lordosis_angle", "sacral_slope", "pelvic_radius", "degree_spondylolisthesis", "class"]


def _png(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# --- statistics on a frame worked out by hand ------------------------------------------------
def test_statistics_are_the_known_figures(spec):
    frame = pd.DataFrame(
        {
            "pelvic_incidence": [1.0, 2.0, 3.0, 4.0, None],
            "pelvic_tilt": [2.0, 4.0, 6.0, 8.0, 10.0],
            "lumbar_lordosis_angle": [5.0, 4.0, 3.0, 2.0, 1.0],
            "sacral_slope": [7.0] * 5,
            "class": ["Abnormal", "Normal", "Abnormal", None, "Abnormal"],
        }
    )
    stats = dp.column_stats(spec, frame)
    assert set(stats) == {"pelvic_incidence", "pelvic_tilt", "lumbar_lordosis_angle", "sacral_slope", "class"}  # only columns present
    assert stats["pelvic_incidence"] == pytest.approx(
        {"kind": "numeric", "count": 4, "nulls": 1, "mean": 2.5, "std": math.sqrt(5 / 3), "min": 1.0, "q25": 1.75, "median": 2.5, "q75": 3.25, "max": 4.0}
    )
    assert stats["sacral_slope"]["std"] == 0.0 and stats["sacral_slope"]["q25"] == 7.0
    assert stats["class"] == {"kind": "categorical", "count": 4, "nulls": 1, "unique": 2, "categories": {"Abnormal": 3, "Normal": 1}}
    target = dp.target_summary(spec, frame)
    assert target["rows"] == 4 and target["classes"] == {"Abnormal": {"count": 3, "share": 0.75}, "Normal": {"count": 1, "share": 0.25}}
    corr = dp.correlation(spec, frame)
    assert corr["pelvic_tilt"]["lumbar_lordosis_angle"] == pytest.approx(-1.0)
    assert corr["pelvic_incidence"]["pelvic_tilt"] == pytest.approx(1.0)  # pairwise: the null row left out
    assert corr["sacral_slope"]["pelvic_tilt"] is None  # a constant column correlates with nothing


def test_a_class_outside_the_spec_is_counted_not_dropped(spec):
    frame = pd.DataFrame({"class": ["Abnormal", "Unknown", "Unknown"]})
    assert dp.target_summary(spec, frame)["classes"]["Unknown"] == {"count": 2, "share": pytest.approx(2 / 3)}


def test_many_categories_are_summed_beyond_the_limit():
    spec = load_pipeline("car_evaluation")
    column = spec.feature_columns[0].name
    values = [f"v{i:02d}" for i in range(dp.MAX_CATEGORIES + 5) for _ in range(2)] + ["v00"]
    stats = dp.column_stats(spec, pd.DataFrame({column: values}))[column]
    assert stats["unique"] == dp.MAX_CATEGORIES + 5 and len(stats["categories"]) == dp.MAX_CATEGORIES + 1
    assert stats["categories"]["v00"] == 3 and stats["categories"]["(other)"] == 10 and sum(stats["categories"].values()) == len(values)


# --- degenerate data is described ------------------------------------------------------------
def _degenerate(spec, case: str) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c.name: rng.normal(size=40) if c.type != "string" else rng.choice(list(c.categories or ("a", "b")), 40) for c in spec.columns})
    if spec.is_classification:
        frame[spec.target.column] = rng.choice(list(spec.target.classes), 40)
    first = spec.feature_columns[0].name
    if case == "constant":
        frame[first] = frame[first].iloc[0]
    elif case == "all null":
        frame[first] = None
    elif case == "one class":
        frame[spec.target.column] = spec.target.classes[0] if spec.is_classification else 5.0
    elif case == "empty":
        frame = frame.iloc[:0]
    elif case == "target missing":
        frame = frame.drop(columns=spec.target.column)
    return frame


PIPELINES = ["vertebral_column", "car_evaluation", "wine_quality"]  # numeric, string-only and regression


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("case", ["constant", "all null", "one class", "empty", "target missing"])
def test_degenerate_frames_are_described(pipeline, case):
    spec = load_pipeline(pipeline)
    doc = json.loads(json.dumps(dp.profile(spec, _degenerate(spec, case)), allow_nan=False))  # valid JSON: no NaN anywhere
    first = spec.feature_columns[0].name
    if case == "all null":
        assert doc["columns"][first]["count"] == 0 and doc["columns"][first]["nulls"] == 40
    if case == "one class" and spec.is_classification:
        shares = {k: v["share"] for k, v in doc["target"]["classes"].items()}
        assert shares[spec.target.classes[0]] == 1.0 and set(shares.values()) == {1.0, 0.0}
    if case == "target missing":
        assert doc["target"] == {"column": spec.target.column, "missing": True}


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_degenerate_frames_are_charted(pipeline):
    """Every chart is a real image for a frame with an all-null, a constant column and one class, and for an empty one."""
    spec = load_pipeline(pipeline)
    frame = _degenerate(spec, "one class")
    first, second = spec.feature_columns[0].name, spec.feature_columns[1].name
    frame[first], frame[second] = None, frame[second].iloc[0]
    for label, data in (("degenerate", frame), ("empty", frame.iloc[:0])):
        for name, png in dp.charts(spec, data, label).items():
            width, height = _png(png)
            assert width > 100 and height > 100, (label, name)


# --- the drift over dates, from real curated gate records ------------------------------------
def _vertebral() -> pd.DataFrame:
    body = (ROOT / "include/data/vertebral_column/column_2C_weka.arff").read_text().split("@data")[1]
    return pd.read_csv(io.StringIO(body), header=None, names=COLUMNS)


def _shifted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in COLUMNS[:-1]:
        out[col] = out[col] + 0.5 * out[col].std()
    return out


def _curated(spec, env, ds: str, frame: pd.DataFrame) -> None:
    """A landed batch and its committed curated partition, as the Glue job leaves them."""
    from gated_ml.stages import data

    loc = jr.locations(spec, env)
    storage.write(data.batch_uri(spec, env.bucket, ds), "landed")
    storage.write(loc.curated(ds) + "part-1-00000.parquet", frame.to_parquet(index=False))
    storage.write(loc.curated(ds) + batch_commit.COMMIT_MARKER, json.dumps({"files": ["part-1-00000.parquet"], "rows": len(frame), "attempt": 1}))


@pytest.fixture(scope="module")
def profiled(tmp_path_factory, spec):
    """Two weeks gated by the real curated gate (the second drifted), split, and the second week profiled."""
    from gated_ml.stages import data, gates, profile
    from gated_ml.targets.local import LocalTarget

    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__GATED_ML__LAKE_ROOT", str(tmp_path_factory.mktemp("lake")))
    env = LocalTarget().environment()
    frames = {FIRST: _vertebral(), SECOND: _shifted(_vertebral())}
    for ds, frame in frames.items():
        run = jr.Run(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC), 1)
        _curated(spec, env, ds, frame)
        gates.gate_curated(spec, env, run)
    loc = jr.locations(spec, env)
    storage.write(loc.quality(LATER) + "curated.json", storage.read_text(loc.quality(SECOND) + "curated.json"))  # a later date: not this run's
    run = jr.Run(dt.datetime.fromisoformat(SECOND).replace(tzinfo=dt.UTC), 1)
    data.split(spec, env, run)
    result = profile.profile_data(spec, env, run)
    yield {"env": env, "loc": loc, "frames": frames, "result": result, "doc": json.loads(storage.read_text(loc.profile(SECOND) + "profile.json"))}
    mp.undo()


def _observed_kl(finding: dict) -> float:
    return float(re.match(r"KL divergence (\S+) from the baseline", finding["observed"]).group(1))


@pytest.mark.slow  # GX checkpoints on pipeline data; Airflow's API server app
def test_the_profile_describes_the_batch_and_the_window(profiled, spec):
    doc, frames = profiled["doc"], profiled["frames"]
    window = pd.concat(frames.values(), ignore_index=True).drop_duplicates()
    assert doc["ds"] == SECOND and doc["batch"]["rows"] == len(frames[SECOND]) and doc["window"]["rows"] == len(window)
    assert profiled["result"] == {"profile_uri": profiled["loc"].profile(SECOND), "rows": {"batch": len(frames[SECOND]), "window": len(window)}}
    tilt = frames[SECOND]["pelvic_tilt"]
    assert doc["batch"]["columns"]["pelvic_tilt"]["mean"] == pytest.approx(tilt.mean())
    assert doc["window"]["columns"]["pelvic_tilt"]["max"] == pytest.approx(window["pelvic_tilt"].max())
    assert doc["window"]["target"]["classes"]["Normal"]["count"] == int((window["class"] == "Normal").sum())
    names = {u.rsplit("/", 1)[1] for u in storage.list_uris(profiled["loc"].profile(SECOND))}
    assert names == {f"{n}.png" for n in PROFILE_IMAGES} | {"profile.json"}
    for name in PROFILE_IMAGES:
        _png(storage.read_bytes(profiled["loc"].profile(SECOND) + f"{name}.png"))


@pytest.mark.slow  # GX checkpoints on pipeline data; Airflow's API server app
def test_the_drift_series_reads_the_gate_records_up_to_the_run(profiled, spec):
    drift, loc = profiled["doc"]["drift"], profiled["loc"]
    assert drift["dates"] == [FIRST, SECOND]  # the later date's record is not this run's
    assert set(drift["columns"]) == set(spec.numeric_features)
    assert drift["limits"] == [spec.gates.drift.max_kl_divergence] * 2
    for i, ds in enumerate(drift["dates"]):
        findings = [f for f in json.loads(storage.read_text(loc.quality(ds) + "curated.json"))["findings"] if f["check"] == "drift"]
        assert {f["column"] for f in findings} == set(drift["columns"])
        for f in findings:
            value = drift["columns"][f["column"]][i]
            assert value == pytest.approx(_observed_kl(f), abs=5e-5)  # the figure the gate's message shows
            assert f["success"] == (value < drift["limits"][i])
    assert all(values[0] == pytest.approx(0.0, abs=1e-9) for values in drift["columns"].values())  # the baseline's own batch
    assert max(values[1] for values in drift["columns"].values()) > spec.gates.drift.max_kl_divergence  # the shifted week drifted


def test_a_record_without_a_divergence_leaves_a_gap():
    def record(kl):
        config = {"type": dp.DRIFT_EXPECTATION, "kwargs": {"column": "a", "threshold": 0.1}}
        return {"validation_result": {"results": [{"expectation_config": config, "result": {"observed_value": kl}}]}}

    series = dp.drift_series({"2026-01-08": record(None), "2026-01-01": record(0.05), "2026-01-15": {"findings": []}})
    assert series == {"dates": ["2026-01-01", "2026-01-08", "2026-01-15"], "columns": {"a": [0.05, None, None]}, "limits": [0.1, 0.1, None]}
    _png(dp.drift_chart(series, "gaps"))
    _png(dp.drift_chart(dp.drift_series({}), "nothing yet"))


# --- the report view: login, the data section, the run parameters ---------------------------
@pytest.fixture(scope="module")
def served(profiled, airflow_db):
    loc = profiled["loc"]
    params = {"skip_tuning": False, "max_tuning_jobs": 4, "deploy": True}
    run_id = airflow_api.add_dag_run("vertebral_column", RUN_ID, SECOND)
    storage.write(loc.runs(SECOND) + "params.json", json.dumps({"dag_run_id": run_id, "params": params, "overrides": {"max_tuning_jobs": 4}}))
    return f"/gated-ml/reports/vertebral_column/{run_id}"


@pytest.fixture(scope="module")
def served_later(served):
    """A run of a date with neither a profile nor params."""
    return f"/gated-ml/reports/vertebral_column/{airflow_api.add_dag_run('vertebral_column', 'manual__later', LATER)}"


@pytest.mark.slow  # GX checkpoints on pipeline data; Airflow's API server app
def test_the_report_shows_the_data_section_and_the_run_parameters(served, profiled):
    page = airflow_api.client().get(served)
    assert page.status_code == 200, page.text
    text = page.text
    assert text.index("<h2>Run parameters</h2>") < text.index("<h2>Data</h2>") < text.index("No evaluation for this run")
    assert re.search(r"<tr class=override><th>max_tuning_jobs</th><td>4</td><td>overridden</td></tr>", text)
    assert "<tr><th>skip_tuning</th><td>False</td><td>default</td></tr>" in text and "1 overridden: max_tuning_jobs" in text
    doc = profiled["doc"]
    assert f"{doc['batch']['rows']} rows; window (train + validation + test): {doc['window']['rows']} rows" in text
    tilt = doc["window"]["columns"]["pelvic_tilt"]
    assert f"<tr><th>pelvic_tilt</th><td>window</td><td>{tilt['count']}</td><td>0</td><td>{tilt['mean']:.4g}</td>" in text
    assert "<th>Abnormal</th>" in text and "Class balance of class" in text
    sources = re.findall(r'src="([^"]+/profile/[^"]+)"', text)
    assert len(sources) == len(PROFILE_IMAGES)
    c = airflow_api.client()
    for src in sources:  # relative to the report's URL, as a browser resolves them
        image = c.get(served.rsplit("/", 1)[0] + "/" + src.removeprefix("./"))
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        _png(image.content)


@pytest.mark.slow  # GX checkpoints on pipeline data; Airflow's API server app
def test_a_run_without_profile_or_parameters_says_so(served_later):
    page = airflow_api.client().get(served_later)
    assert page.status_code == 200
    assert "No parameters recorded for this run." in page.text and "No data profile for this run (yet)" in page.text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["secrets", "batch_histograms_", "..%2Fprofile", "drift.png"])
def test_only_the_profile_charts_are_served(served, name):
    assert airflow_api.client().get(f"{served}/profile/{name}.png").status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("path", ["", "/profile/drift.png", "/roc_curve.png"])
def test_every_view_refuses_a_request_without_login(served, path):
    anonymous = airflow_api.client(None).get(served + path)
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "Not authenticated"
    forged = airflow_api.client(None).get(served + path, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 403
    no_role = airflow_api.client(None).get(served + path, headers={"Authorization": f"Bearer {airflow_api.token(role=None)}"})
    assert no_role.status_code == 403 and no_role.json()["detail"] == "Forbidden"  # logged in, but no read access to the DAG


@pytest.mark.slow  # GX checkpoints on pipeline data; Airflow's API server app
def test_the_ui_login_cookie_opens_the_report(served):
    """A browser opening the external view or the extra link carries the UI's ``_token`` cookie, not a header."""
    page = airflow_api.client(cookie=True).get(served)
    assert page.status_code == 200 and "<h2>Data</h2>" in page.text
