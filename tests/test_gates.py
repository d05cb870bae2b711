"""The bad-input matrix: every kind of bad batch is stopped by the first gate that can see it.

Each case runs the real stage functions in the DAG's order (land → landing gate → Glue
ETL on local Spark → curated gate → split → splits gate → transform-input gate), or,
for the later gates, starts from the outputs of that run. It asserts which gate stopped
the batch, the message (check, column, observed figure, threshold), the quarantine,
that the landed raw data is untouched, and that no later stage wrote anything.
"""

import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import GateFailed
from gated_ml.lake import local_path
from gated_ml.quality import baseline
from gated_ml.spec import load_pipeline
from gated_ml.stages import data, gates
from gated_ml.stages.code import package_code
from gated_ml.targets.local import LocalTarget

ARFF = (ROOT / "include/data/vertebral_column/column_2C_weka.arff").read_text()
HEADER, BODY = ARFF.split("@data")
GOOD_DS = "2026-10-01"
pytestmark = pytest.mark.slow  # every test needs the module's `world`: the data stages with Spark ETL and GX checkpoints


def _run(ds):
    return jr.Run(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC), 1)


def _frame() -> pd.DataFrame:
    return pd.read_csv(
        io.StringIO(BODY),
        header=None,
        names=["pelvic_incidence", "pelvic_tilt", "lumbar_lordosis_angle", "sacral_slope", "pelvic_radius", "degree_spondylolisthesis", "class"],
    )


def _arff(frame: pd.DataFrame) -> str:
    return HEADER + "@data\n" + frame.to_csv(index=False, header=False, na_rep="?", lineterminator="\r\n")


class Pipeline:
    """The data stages of the DAG, in its order, stopping at the first failure."""

    STEPS = ("landing", "etl", "curated", "split", "splits", "transform_input")

    def __init__(self, spec, env):
        self.spec, self.env = spec, env

    def run(self, ds: str, raw: str) -> list[str]:
        spec, env, run = self.spec, self.env, _run(ds)
        uri = jr.locations(spec, env).landing(ds) + jr.raw_file_name(spec)
        storage.write(uri, raw)
        code = package_code(spec, env)
        done = []
        for step, call in (
            ("landing", lambda: gates.gate_landing(spec, env, run, uri)),
            ("etl", lambda: LocalTarget().run_step(data.GLUE_ETL, spec, env, run, code=code)),
            ("curated", lambda: gates.gate_curated(spec, env, run)),
            ("split", lambda: data.split(spec, env, run)),
            ("splits", lambda: gates.gate_splits(spec, env, run)),
            ("transform_input", lambda: gates.gate_transform_input(spec, env, run)),
        ):
            call()
            done.append(step)
        return done


@pytest.fixture(scope="module")
def world(tmp_path_factory, spec):
    """A lake where the real data was accepted once (and so is the baseline).

    Each case lands a whole batch under its own date; a window of one batch keeps the cases
    apart (the window itself is tested in test_arrivals.py).
    """
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__GATED_ML__LAKE_ROOT", str(tmp_path_factory.mktemp("lake")))
    env = LocalTarget().environment()
    pipe = Pipeline(spec.model_copy(update={"window": spec.window.model_copy(update={"batches": 1})}), env)
    assert pipe.run(GOOD_DS, ARFF) == list(Pipeline.STEPS)  # the real data passes every gate
    yield pipe
    mp.undo()


def _stopped(pipe, ds, raw, gate) -> str:
    with pytest.raises(GateFailed) as err:
        pipe.run(ds, raw)
    msg = str(err.value)
    assert msg.startswith(f"gate vertebral_column.{gate}: FAILED"), msg
    spec, env = pipe.spec, pipe.env
    loc = jr.locations(spec, env)
    reason = json.loads(storage.read_text(loc.quarantine(ds) + f"{gate}/reason.json"))
    assert reason["gate"] == gate and reason["success"] is False and reason["findings"]
    assert len(storage.list_uris(loc.quarantine(ds) + f"{gate}/")) >= 2  # the batch beside its reason
    assert storage.read_text(loc.landing(ds) + jr.raw_file_name(spec)) == raw  # landing untouched
    later = {"landing": loc.curated(ds), "curated": loc.features(ds)}
    if gate in later:
        assert not storage.list_uris(later[gate]), f"a stage after the {gate} gate wrote output"
    return msg


LANDING = [
    ("empty file", lambda: "", ["schema", "observed columns []"]),
    ("header only", lambda: HEADER + "@data\r\n", ["row_count", "observed 0", ">= 1"]),
    ("wrong delimiter", lambda: HEADER + "@data" + BODY.replace(",", ";"), ["schema", "observed columns ['field_1']"]),
    (
        "missing column",
        lambda: _arff(_frame().drop(columns="pelvic_radius")).replace("@attribute pelvic_radius numeric\r\n", ""),
        [
            "schema",
            "'degree_spondylolisthesis', 'class']",
            "threshold columns ['pelvic_incidence', 'pelvic_tilt', 'lumbar_lordosis_angle', 'sacral_slope', 'pelvic_radius'",
        ],
    ),
    (
        "extra column",
        lambda: _arff(
            _frame().assign(bone_density=1.0)[
                [
                    "pelvic_incidence",
                    "pelvic_tilt",
                    "lumbar_lordosis_angle",
                    "sacral_slope",
                    "pelvic_radius",
                    "degree_spondylolisthesis",
                    "bone_density",
                    "class",
                ]
            ]
        ).replace("@attribute class", "@attribute bone_density numeric\r\n@attribute class"),
        ["schema", "'bone_density'"],
    ),
    (
        "wrong type in a numeric column",
        lambda: ARFF.replace("63.0278175,", "sixty-three,", 1),
        ["parseable", "column 'pelvic_incidence'", "sixty-three", "every value numeric"],
    ),
    ("50% duplicated rows", lambda: _arff(pd.concat([_frame(), _frame()])), ["duplicates", "620 rows (100.00%) repeat another row", "at most 0.00% repeated"]),
]

CURATED = [
    ("one all-null column", lambda f: f.assign(pelvic_tilt=np.nan), ["nulls", "column 'pelvic_tilt'", "100.00% null (310 of 310 rows)", "at most 0.00% null"]),
    (
        "30% nulls scattered",
        lambda f: f.assign(sacral_slope=f.sacral_slope.where(np.random.default_rng(1).random(len(f)) > 0.3)),
        ["nulls", "column 'sacral_slope'", "% null", "at most 0.00% null"],
    ),
    (
        "a single null over a zero tolerance",
        lambda f: f.assign(pelvic_tilt=f.pelvic_tilt.where(f.index != 5)),
        ["nulls", "column 'pelvic_tilt'", "0.32% null (1 of 310 rows)", "at most 0.00% null"],
    ),
    (
        "extreme outliers in 10% of rows",
        lambda f: f.assign(pelvic_radius=np.where(f.index % 10 == 0, 1e4, f.pelvic_radius)),
        ["outliers", "column 'pelvic_radius'", "12.90% of 310 rows", "at most 8.00% outside [88.57, 147.6]"],
    ),
    ("single-class labels", lambda f: f.assign(**{"class": "Abnormal"}), ["class_balance", "column 'class'", "'Normal' is 0.00% of rows", "at least 20.00%"]),
    (
        "an unseen label",
        lambda f: f.assign(**{"class": np.where(f.index < 3, "Scoliosis", f["class"])}),
        ["class_balance", "unexpected values ['Scoliosis']", "values within ['Abnormal', 'Normal']"],
    ),
    (
        "minority class below threshold",
        lambda f: pd.concat([f[f["class"] == "Abnormal"], f[f["class"] == "Normal"].head(20)]),
        ["class_balance", "'Normal' is 8.70% of rows", "at least 20.00%"],
    ),
]


@pytest.mark.parametrize("case, raw, expected", LANDING, ids=[c[0] for c in LANDING])
def test_landing_gate_stops(world, case, raw, expected):
    msg = _stopped(world, f"2026-11-{LANDING.index(next(c for c in LANDING if c[0] == case)) + 1:02d}", raw(), "landing")
    for part in expected:
        assert part in msg, f"{case}: {part!r} not in\n{msg}"


@pytest.mark.parametrize("case, corrupt, expected", CURATED, ids=[c[0] for c in CURATED])
def test_curated_gate_stops(world, case, corrupt, expected):
    ds = f"2026-12-{[c[0] for c in CURATED].index(case) + 1:02d}"
    msg = _stopped(world, ds, _arff(corrupt(_frame())), "curated")
    for part in expected:
        assert part in msg, f"{case}: {part!r} not in\n{msg}"


def _shifted(frame):
    """Every feature moved by half a standard deviation: values still plausible, distribution not."""
    out = frame.copy()
    for col in out.columns[:-1]:
        out[col] = out[col] + 0.5 * out[col].std()
    return out


def test_drift_is_a_warning_by_default(world, caplog):
    """The shipped spec makes drift a warning: recorded and shown, not stopping the batch."""
    ds = "2027-01-01"
    assert world.run(ds, _arff(_shifted(_frame()))) == list(Pipeline.STEPS)
    result = json.loads(storage.read_text(jr.locations(world.spec, world.env).quality(ds) + "curated.json"))
    drift = [f for f in result["findings"] if f["check"] == "drift" and not f["success"]]
    assert drift and all(f["severity"] == "warning" for f in drift)
    assert "WARN drift: column 'pelvic_incidence': observed KL divergence" in caplog.text


def test_drift_stops_a_batch_when_the_spec_says_fail(world, tmp_path, monkeypatch):
    text = (ROOT / "include/pipelines/vertebral_column.yaml").read_text().replace("name: vertebral_column", "name: strict_drift")
    text = text.replace("  split_share_tolerance: 0.08\n", "  split_share_tolerance: 0.08\n  severity: {drift: fail}\n")
    (tmp_path / "strict_drift.yaml").write_text(text)
    monkeypatch.setenv("AIRFLOW__GATED_ML__SPEC_DIR", str(tmp_path))
    spec = load_pipeline("strict_drift")
    strict = Pipeline(spec, world.env)
    strict.run(GOOD_DS, ARFF)  # its own baseline
    with pytest.raises(GateFailed) as err:
        strict.run("2027-01-02", _arff(_shifted(_frame())))
    msg = str(err.value)
    assert "gate strict_drift.curated: FAILED" in msg
    assert "drift: column 'pelvic_tilt': observed KL divergence" in msg and "threshold below 0.1" in msg


def _split_once(world, ds):
    assert world.run(ds, ARFF) == list(Pipeline.STEPS)
    return jr.locations(world.spec, world.env)


def test_splits_gate_catches_a_row_in_train_and_test(world):
    ds = "2027-02-01"
    loc = _split_once(world, ds)
    train = storage.read_text(loc.features(ds, "train") + "train.csv").splitlines()
    test_uri = loc.features(ds, "test") + "test.csv"
    storage.write(test_uri, storage.read_text(test_uri) + train[1] + "\n")
    with pytest.raises(GateFailed) as err:
        gates.gate_splits(world.spec, world.env, _run(ds))
    msg = str(err.value)
    assert "leakage: table: observed 2 rows (0.64%) repeat another row, threshold at most 0.00% repeated" in msg


def test_splits_gate_catches_broken_stratification(world):
    ds = "2027-02-02"
    loc = _split_once(world, ds)
    test_uri, train_uri = loc.features(ds, "test") + "test.csv", loc.features(ds, "train") + "train.csv"
    test_rows = storage.read_text(test_uri).splitlines()
    normal = [r for r in test_rows if r.startswith("Normal,")]
    storage.write(test_uri, "".join(r + "\n" for r in test_rows if not r.startswith("Normal,")))
    storage.write(train_uri, storage.read_text(train_uri) + "".join(r + "\n" for r in normal))
    with pytest.raises(GateFailed) as err:
        gates.gate_splits(world.spec, world.env, _run(ds))
    msg = str(err.value)
    assert "stratification: column 'class': observed 'Normal' is 0.00% of rows in rows where split==\"test\"" in msg
    # the bound: the overall share less the larger of the tolerance and 3 binomial errors of the test split's size
    frame = data.read_splits(world.spec, world.env, _run(ds))
    n_test, share = (frame["split"] == "test").sum(), (frame["class"] == "Normal").mean()
    low = share - max(world.spec.gates.split_share_tolerance, 3 * (share * (1 - share) / n_test) ** 0.5)
    assert f"threshold at least {100 * low:.2f}%" in msg


@pytest.mark.parametrize(
    "case, edit, expected",
    [
        (
            "text in a feature",
            lambda rows: [rows[0].rsplit(",", 1)[0] + ",very high"] + rows[1:],
            ["parseable", "column 'degree_spondylolisthesis'", "observed type str", "one of ['float64'"],
        ),
        ("a feature missing", lambda rows: [r.rsplit(",", 1)[0] for r in rows], ["schema", "observed columns ['field_1'"]),
    ],
)
def test_transform_input_gate_stops(world, case, edit, expected):
    ds = "2027-03-01" if case == "text in a feature" else "2027-03-02"
    loc = _split_once(world, ds)
    uri = loc.features(ds, "test") + "test.csv"
    storage.write(uri, "".join(r + "\n" for r in edit(storage.read_text(uri).splitlines())))
    with pytest.raises(GateFailed) as err:
        gates.gate_transform_input(world.spec, world.env, _run(ds))
    for part in expected:
        assert part in str(err.value), f"{case}: {part!r} not in\n{err.value}"


def _put_predictions(world, ds, rows):
    loc = jr.locations(world.spec, world.env)
    storage.write(loc.features(ds, "test") + "test.csv", "".join(f"{label},1,2,3,4,5,6\n" for label, _ in rows))
    out = loc.transform(ds) + "test/test.csv.out"
    storage.write(out, "".join(f"{label},{p}\n" for label, p in rows))
    return out


GOOD_PREDICTIONS = [("Abnormal", 0.9), ("Normal", 0.2), ("Abnormal", 0.7)]


@pytest.mark.parametrize(
    "case, predictions, expected",
    [
        ("predictions missing for some rows", None, ["completeness", "observed 2", "exactly 3"]),
        (
            "predictions all one class",
            [("Abnormal", 0.9), ("Normal", 0.8), ("Abnormal", 0.7)],
            ["class_balance", "column 'predicted_label'", "observed 1", ">= 2"],
        ),
        ("probabilities out of range", [("Abnormal", 1.7), ("Normal", 0.2), ("Abnormal", 0.7)], ["range", "column 'prediction'", "[0, 1]"]),
    ],
)
def test_predictions_gate_stops(world, case, predictions, expected):
    ds = "2027-04-01"
    out = _put_predictions(world, ds, GOOD_PREDICTIONS)
    gates.gate_predictions(world.spec, world.env, _run(ds), [out])  # the good ones pass
    if predictions is None:
        storage.write(out, "Abnormal,0.9\nNormal,0.2\n")
    else:
        out = _put_predictions(world, ds, predictions)
    with pytest.raises(GateFailed) as err:
        gates.gate_predictions(world.spec, world.env, _run(ds), [out])
    for part in expected:
        assert part in str(err.value), f"{case}: {part!r} not in\n{err.value}"


def test_a_rerun_after_the_data_is_fixed_passes_without_clean_up(world):
    ds = "2027-05-01"
    bad = _arff(_frame().assign(pelvic_tilt=lambda f: f.pelvic_tilt.where(f.index != 5)))
    _stopped(world, ds, bad, "curated")
    assert world.run(ds, ARFF) == list(Pipeline.STEPS)  # the owner re-lands a fixed file; nothing else
    result = json.loads(storage.read_text(jr.locations(world.spec, world.env).quality(ds) + "curated.json"))
    assert result["success"] is True
    assert local_path(jr.locations(world.spec, world.env).quality(ds) + "data_docs/curated/index.html").is_file()


def test_gate_results_and_data_docs_are_saved(world):
    loc = jr.locations(world.spec, world.env)
    for gate in ("landing", "curated", "splits", "transform_input"):
        result = json.loads(storage.read_text(loc.quality(GOOD_DS) + f"{gate}.json"))
        assert result["success"] and result["validation_result"]["results"]
        assert local_path(loc.quality(GOOD_DS) + f"data_docs/{gate}/index.html").is_file()


def test_baseline_changes_only_by_explicit_promotion(world):
    spec, env = world.spec, world.env
    current = baseline.load(spec, env)
    assert current["source_ds"] == GOOD_DS and current["accepted"]["action"] == "first accepted batch"
    world.run("2027-06-01", ARFF)
    assert baseline.load(spec, env)["source_ds"] == GOOD_DS  # a later accepted batch does not replace it
    with pytest.raises(ValueError, match="did not pass the curated gate"):
        baseline.promote(spec, env, "2026-12-05", "try a refused batch")
    with pytest.raises(ValueError, match="needs a reason"):
        baseline.promote(spec, env, "2027-06-01", " ")
    promoted = baseline.promote(spec, env, "2027-06-01", "new measuring protocol")
    assert promoted["source_ds"] == "2027-06-01"
    history = [json.loads(line) for line in storage.read_text(jr.locations(spec, env).baseline() + "history.jsonl").splitlines()]
    assert [h["action"] for h in history] == ["first accepted batch", "promoted"] and history[-1]["reason"] == "new measuring protocol"
