"""Every gate stops a bad batch with a message naming the check, column, figure and threshold."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from gated_ml import job_requests as jr
from gated_ml import stages, storage
from gated_ml.lake import local_path
from gated_ml.quality.checkpoint import GateFailed

GOOD_DS, BAD_DS = "2026-10-01", "2026-11-01"


@pytest.fixture
def curated(spec):
    raw = (stages.PROJECT_ROOT / spec.source.path).read_text()
    return pd.read_csv(io.StringIO(raw.split("@data")[1]), header=None, names=[c.name for c in spec.columns])


def _run(ds):
    import datetime as dt

    return jr.Run(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc), 1)


def _put_curated(spec, env, ds, frame):
    path = local_path(jr.locations(spec, env).curated(ds)) / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@pytest.fixture
def baseline(lake, spec, env, curated):
    """The real data accepted once: it becomes the baseline the outlier fences come from."""
    _put_curated(spec, env, GOOD_DS, curated)
    stages.gate_curated(spec, env, _run(GOOD_DS))
    assert storage.exists(jr.locations(spec, env).baseline() + "stats.json")
    return curated


def _fails(fn, *args, **kwargs) -> str:
    with pytest.raises(GateFailed) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _assert_quarantined(spec, env, ds, gate):
    q = jr.locations(spec, env).quarantine(ds) + f"{gate}/"
    reason = json.loads(storage.read_text(q + "reason.json"))
    assert reason["success"] is False and reason["gate"] == gate
    assert len(storage.list_uris(q)) >= 2  # the batch and its reason
    assert json.loads(storage.read_text(jr.locations(spec, env).quality(ds) + f"{gate}.json"))["success"] is False


def test_real_data_passes_curated_gate_and_becomes_baseline(baseline, spec, env):
    result = json.loads(storage.read_text(jr.locations(spec, env).quality(GOOD_DS) + "curated.json"))
    assert result["success"] and result["validation_result"]["success"]


@pytest.mark.parametrize(
    "name, corrupt, expected",
    [
        ("single null over zero tolerance", lambda d: d.assign(pelvic_tilt=d.pelvic_tilt.where(d.index != 5)), ["nulls", "'pelvic_tilt'", "0.32% null", "at most 0.00% null"]),
        ("extreme outliers in 10% of rows (on top of 2.9% natural ones)", lambda d: d.assign(pelvic_radius=np.where(d.index % 10 == 0, 1e4, d.pelvic_radius)), ["outliers", "'pelvic_radius'", "12.90% of 310 rows", "at most 8.00% outside"]),
        ("single-class labels", lambda d: d.assign(**{"class": "Abnormal"}), ["class_balance", "'class'", "'Normal' is 0.00% of rows", "at least 20.00%"]),
        ("unseen label", lambda d: d.assign(**{"class": np.where(d.index < 3, "Unknown", d["class"])}), ["class_balance", "Unknown", "values within ['Abnormal', 'Normal']"]),
        ("minority below threshold", lambda d: pd.concat([d[d["class"] == "Abnormal"], d[d["class"] == "Normal"].head(20)]), ["'Normal' is 8.70% of rows", "at least 20.00%"]),
        ("duplicated rows", lambda d: pd.concat([d, d.head(155)]), ["duplicates", "repeat another row", "at most 0.00% repeated"]),
    ],
)
def test_curated_gate_stops_bad_batches(baseline, spec, env, name, corrupt, expected):
    _put_curated(spec, env, BAD_DS, corrupt(baseline.copy()))
    msg = _fails(stages.gate_curated, spec, env, _run(BAD_DS))
    assert "gate vertebral_column.curated: FAILED" in msg
    for part in expected:
        assert part in msg, f"{name}: {part!r} not in {msg}"
    _assert_quarantined(spec, env, BAD_DS, "curated")


def _land(spec, env, ds, text):
    uri = jr.locations(spec, env).landing(ds) + jr.raw_file_name(spec)
    storage.write(uri, text)
    return uri


ARFF = (stages.PROJECT_ROOT / "include/data/vertebral_column/column_2C_weka.arff").read_text()


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("wrong delimiter", ARFF.split("@data")[0] + "@data\n" + ARFF.split("@data")[1].replace(",", ";"), ["schema", "observed columns ['field_1']", "column missing from the batch"]),
        ("header only", ARFF.split("@data")[0] + "@data\n", ["row_count", "observed 0", ">= 1"]),
        ("empty file", "", ["schema"]),
        ("text in a numeric column", ARFF.replace("63.0278175,", "sixty-three,", 1), ["parseable", "'pelvic_incidence'", "sixty-three", "every value numeric"]),
        ("missing column", ARFF.replace("@attribute pelvic_radius numeric", ""), ["schema", "field_7"]),
    ],
)
def test_landing_gate_stops_unreadable_batches(lake, spec, env, name, text, expected):
    uri = _land(spec, env, BAD_DS, text)
    msg = _fails(stages.gate_landing, spec, env, _run(BAD_DS), uri)
    for part in expected:
        assert part in msg, f"{name}: {part!r} not in {msg}"
    _assert_quarantined(spec, env, BAD_DS, "landing")
    assert storage.read_text(uri) == text  # the landed raw data is never modified


def test_splits_gate_catches_leakage(baseline, spec, env):
    _put_curated(spec, env, BAD_DS, baseline)
    run = _run(BAD_DS)
    stages.split(spec, env, run)
    stages.gate_splits(spec, env, run)  # the real split passes
    loc = jr.locations(spec, env)
    train = storage.read_text(loc.features(BAD_DS, "train") + "train.csv").splitlines()
    test_uri = loc.features(BAD_DS, "test") + "test.csv"
    storage.write(test_uri, storage.read_text(test_uri) + train[1] + "\n")  # a training row also in test
    msg = _fails(stages.gate_splits, spec, env, run)
    assert "leakage" in msg and "2 rows" in msg and "at most 0.00% repeated" in msg


def _put_predictions(spec, env, ds, rows):
    loc = jr.locations(spec, env)
    storage.write(loc.features(ds, "test") + "test.csv", "".join(f"{label},1,2,3,4,5,6\n" for label, _ in rows))
    out = loc.transform(ds) + "test.csv.out"
    storage.write(out, "".join(f"{label},{p}\n" for label, p in rows))
    return out


def test_predictions_gate_passes_good_predictions(lake, spec, env):
    out = _put_predictions(spec, env, BAD_DS, [("Abnormal", 0.9), ("Normal", 0.2), ("Abnormal", 0.7)])
    stages.gate_predictions(spec, env, _run(BAD_DS), [out])


def test_predictions_gate_catches_missing_predictions(lake, spec, env):
    out = _put_predictions(spec, env, BAD_DS, [("Abnormal", 0.9), ("Normal", 0.2), ("Abnormal", 0.7)])
    storage.write(out, "Abnormal,0.9\nNormal,0.2\n")
    msg = _fails(stages.gate_predictions, spec, env, _run(BAD_DS), [out])
    assert "completeness" in msg and "observed 2" in msg and "exactly 3" in msg


def test_predictions_gate_catches_collapse_to_one_class(lake, spec, env):
    out = _put_predictions(spec, env, BAD_DS, [("Abnormal", 0.9), ("Normal", 0.8), ("Abnormal", 0.7)])
    msg = _fails(stages.gate_predictions, spec, env, _run(BAD_DS), [out])
    assert "class_balance" in msg and "'predicted_label'" in msg and "observed 1" in msg and ">= 2" in msg


def test_predictions_gate_catches_out_of_range_scores(lake, spec, env):
    out = _put_predictions(spec, env, BAD_DS, [("Abnormal", 1.7), ("Normal", 0.2), ("Abnormal", 0.7)])
    msg = _fails(stages.gate_predictions, spec, env, _run(BAD_DS), [out])
    assert "range" in msg and "'prediction'" in msg and "[0, 1]" in msg
