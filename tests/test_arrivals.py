"""Runs over time: replayed batches by date, the sensor that waits for one, the training window, the row-hash split."""

import asyncio
import datetime as dt
import json
import threading
import time

import pytest

from conftest import ROOT, write_spec
from gated_ml import job_requests as jr
from gated_ml import replay, storage
from gated_ml.errors import SpecError, StageError
from gated_ml.spec import load_pipeline, load_spec
from gated_ml.stages import data

GOOD = (ROOT / "include" / "pipelines" / "vertebral_column.yaml").read_text()


def _run(ds):
    return jr.Run(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC), 1)


# --- replay -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vertebral_column", "wine_quality", "car_evaluation"])
def test_replay_cuts_every_row_once_into_batches_of_the_source_format(name):
    spec = load_pipeline(name)
    fmt = jr.raw_format(spec)
    head, rows, _ = fmt.split_lines((ROOT / spec.source.path).read_text())
    batches = replay.batches(spec)
    assert list(batches) == ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22"]
    cut = [fmt.split_lines(b.decode()) for b in batches.values()]
    assert all(h == head for h, _, _ in cut)  # every batch repeats the header (ARFF attributes, csv header line)
    assert sorted(r.rstrip("\r\n") for _, rs, _ in cut for r in rs) == sorted(r.rstrip("\r\n") for r in rows)
    assert len(cut[0][1]) == round(0.7 * len(rows))  # the history load, then equal weekly parts
    assert max(len(c[1]) for c in cut[1:]) - min(len(c[1]) for c in cut[1:]) <= 1
    assert replay.batches(spec) == batches  # deterministic: the spec's seed


def test_a_batch_read_back_by_the_landing_gate_reader(spec):
    frame = jr.raw_format(spec).read_pandas(replay.batches(spec)["2026-11-08"])
    assert list(frame.columns) == [c.name for c in spec.columns] and len(frame) == 31


def test_replay_lands_a_range_and_never_overwrites(lake, spec, env):
    written = replay.land(spec, env, "2026-11-02", "2026-11-15")
    assert [u.split("/ds=")[1] for u in written] == ["2026-11-08/column_2C_weka.arff", "2026-11-15/column_2C_weka.arff"]
    uri = data.batch_uri(spec, env.bucket, "2026-11-08")
    storage.write(uri, b"what upstream really sent")
    assert replay.land(spec, env, "2026-11-01", "2026-11-22") == [data.batch_uri(spec, env.bucket, d) for d in ("2026-11-01", "2026-11-22")]
    assert storage.read_bytes(uri) == b"what upstream really sent"
    assert data.landed_dates(spec, env) == ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22"]


DATED = """name: dated
description: rows that carry their own date
start_date: 2026-01-01
problem_type: binary_classification
source: {path: %s, format: csv, header: true}
columns:
  - {name: when, type: string}
  - {name: x, type: double}
  - {name: label, type: string}
target: {column: label, classes: [a, b], positive_class: b}
tuning:
  objective_metric: "validation:logloss"
  objective_type: Minimize
  ranges: {eta: {type: continuous, min: 0.1, max: 0.5}}
replay: {first_ds: 2026-11-01, batches: 3, date_column: when}
"""


def test_replay_by_a_date_column(tmp_path, monkeypatch):
    (tmp_path / "rows.csv").write_text(
        "When,X,Label\n2026-10-30,1.0,a\n2026-11-01,2.0,b\n2026-11-03,3.0,a\n2026-11-08,4.0,b\n2026-11-09,5.0,a\n2026-12-30,6.0,b\n"
    )
    spec = load_spec(write_spec(tmp_path, DATED % (tmp_path / "rows.csv"), name="dated"))
    monkeypatch.setattr(replay, "_cut_in_order", lambda *a: pytest.fail("a date column cuts by date"))
    batches = {ds: body.decode().splitlines() for ds, body in replay.batches(spec).items()}
    assert batches == {
        "2026-11-01": ["When,X,Label", "2026-10-30,1.0,a", "2026-11-01,2.0,b"],  # the history up to the first date
        "2026-11-08": ["When,X,Label", "2026-11-03,3.0,a", "2026-11-08,4.0,b"],
        "2026-11-15": ["When,X,Label", "2026-11-09,5.0,a"],  # a row after the last date is not replayed
    }
    (tmp_path / "rows.csv").write_text("When,X,Label\nlast tuesday,1.0,a\n")
    with pytest.raises(StageError, match="row 1: when = 'last tuesday' is not a date"):
        replay.batches(spec)


@pytest.mark.parametrize(
    "old, new, hint",
    [
        ("initial_share: 0.7}", "initial_share: 0.7, date_column: visit_date}", "replay.date_column 'visit_date' is not one of the columns"),
        ("batches: 4, every_days: 7, initial_share: 0.7}", "batches: 1, every_days: 7, initial_share: 0.7}", "one batch takes every row"),
        ("window: {batches: all}", "window: {batches: 0}", "window.batches"),
        ("arrival: {timeout_minutes: 60, poke_seconds: 30}", "arrival: {timeout_minutes: 0, poke_seconds: 30}", "arrival.timeout_minutes"),
    ],
)
def test_runs_over_time_settings_are_validated(tmp_path, old, new, hint):
    assert old in GOOD
    with pytest.raises(SpecError, match=hint):
        load_spec(write_spec(tmp_path, GOOD.replace(old, new)))


# --- the sensor -----------------------------------------------------------------------------
def _sensor(spec, env, ds, **kw):
    from gated_ml.targets.arrival import LocalKeySensor

    return LocalKeySensor(task_id="wait_for_batch", batch_uri=data.batch_uri(spec, env.bucket, ds), **kw)


def test_the_local_sensor_fails_naming_the_key_that_stayed_empty(lake, spec, env):
    from airflow.sdk.exceptions import AirflowFailException

    sensor = _sensor(spec, env, "2026-12-06", deferrable=False, poke_interval=0.2, timeout=1)
    started = time.monotonic()
    with pytest.raises(AirflowFailException) as err:
        sensor.execute({})
    assert time.monotonic() - started >= 1  # it waited for the time-out
    assert "no batch arrived at s3://gated-ml-lake/vertebral_column/landing/ds=2026-12-06/column_2C_weka.arff within" in str(err.value)
    # deferred, the time-out comes back through resume_execution: the same message
    with pytest.raises(AirflowFailException, match=r"ds=2026-12-06/column_2C_weka\.arff"):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, {})
    assert "`make replay`" in str(err.value)


def test_a_missing_scoring_batch_names_the_scoring_replay(lake, spec, env):
    from airflow.sdk.exceptions import AirflowFailException

    from gated_ml.targets.arrival import LocalKeySensor

    uri = jr.locations(spec, env).scoring("2026-12-06") + "column_2C_weka.arff"
    sensor = LocalKeySensor(task_id="wait_for_batch", batch_uri=uri, deferrable=False, poke_interval=0.2, timeout=0.5)
    with pytest.raises(AirflowFailException, match=r"\(scoring\.arrival\.timeout_minutes\).*`make replay ZONE=scoring`"):
        sensor.execute({})


def test_the_local_sensor_defers_and_its_trigger_fires_when_the_batch_lands(lake, spec, env):
    from airflow.sdk.exceptions import TaskDeferred

    sensor = _sensor(spec, env, "2026-11-08", poke_interval=0.1, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert trigger.serialize()[0] == "gated_ml.targets.arrival.LocalKeyTrigger"
    threading.Timer(0.5, lambda: replay.land(spec, env, "2026-11-08", "2026-11-08")).start()

    async def first_event():
        return await asyncio.wait_for(trigger.run().__anext__(), timeout=20)

    event = asyncio.run(first_event())
    assert event.payload["status"] == "arrived" and event.payload["path"].endswith("ds=2026-11-08/column_2C_weka.arff")


# --- the window and the split ------------------------------------------------------------------
def _decide(spec, env, ds, gate, success):
    storage.write(jr.locations(spec, env).quality(ds) + f"{gate}.json", json.dumps({"gate": gate, "success": success}))


def test_the_window_takes_passed_batches_leaves_refused_ones_and_waits_for_undecided(lake, spec, env):
    replay.land(spec, env, "2026-11-01", "2026-11-22")
    _decide(spec, env, "2026-11-01", "curated", True)
    _decide(spec, env, "2026-11-08", "landing", False)  # refused at landing
    _decide(spec, env, "2026-11-15", "curated", True)
    w = data.window(spec, env, _run("2026-11-15"))
    assert w == {"window": "all", "batches": ["2026-11-01", "2026-11-15"], "refused": ["2026-11-08"], "pending": []}
    assert data.window_settled(spec, env, _run("2026-11-15"))
    assert data.window(spec, env, _run("2026-11-22"))["pending"] == ["2026-11-22"]  # its own gate has not decided yet
    assert not data.window_settled(spec, env, _run("2026-11-22"))
    last_two = spec.model_copy(update={"window": spec.window.model_copy(update={"batches": 2})})
    assert data.window(last_two, env, _run("2026-11-15"))["batches"] == ["2026-11-15"]  # the last 2 landed: 11-08 (refused), 11-15


def test_no_curated_gate_runs_before_the_earlier_batches_could_set_the_baseline(lake, spec, env):
    """Runs of several dates at once: a later batch is never gated against itself (nor made the baseline) first."""
    replay.land(spec, env, "2026-11-01", "2026-11-22")
    assert data.baseline_pending(spec, env, _run("2026-11-01")) == [] and data.baseline_settled(spec, env, _run("2026-11-01"))
    assert data.baseline_pending(spec, env, _run("2026-11-15")) == ["2026-11-01", "2026-11-08"]
    assert not data.baseline_settled(spec, env, _run("2026-11-15"))
    _decide(spec, env, "2026-11-01", "landing", False)  # refused: it cannot become the baseline
    assert data.baseline_pending(spec, env, _run("2026-11-15")) == ["2026-11-08"]
    named = spec.model_copy(update={"gates": spec.gates.model_copy(update={"baseline_ds": dt.date(2026, 11, 8)})})
    assert data.baseline_pending(named, env, _run("2026-11-22")) == ["2026-11-08"]  # only the named batch matters
    assert data.baseline_pending(named, env, _run("2026-11-08")) == []
    storage.write(jr.locations(spec, env).baseline() + "stats.json", b"{}")  # a baseline is accepted: nothing to wait for
    assert data.baseline_pending(spec, env, _run("2026-11-15")) == [] and data.baseline_settled(spec, env, _run("2026-11-22"))


def test_a_row_keeps_its_split_whatever_else_is_in_the_window(spec):
    import pandas as pd

    rows = pd.concat([jr.raw_format(spec).read_pandas(b) for b in replay.batches(spec).values()], ignore_index=True)
    rows = rows.astype({c.name: "float64" for c in spec.columns if c.type == "double"})
    alone = data.assign_splits(spec, rows.iloc[:217])
    together = data.assign_splits(spec, rows)
    assert list(together[:217]) == list(alone)
    assert list(data.assign_splits(spec, rows.iloc[::-1].reset_index(drop=True)))[::-1] == list(together)  # order does not matter
    shares = pd.Series(together).value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.06 and abs(shares["test"] - 0.1) < 0.05
    reseeded = spec.model_copy(update={"split": spec.split.model_copy(update={"seed": 8})})
    assert list(data.assign_splits(reseeded, rows)) != list(together)


# --- shared state under concurrent runs --------------------------------------------------------
def _record(ds, model):
    return {"model_name": model, "ds": ds, "decision": "Approved", "reasons": [], "metrics": {}}


def test_one_registry_version_per_date_and_a_rerun_supersedes_it(lake, spec, env):
    from gated_ml.evaluation import registry

    first = registry.register(spec, env, _record("2026-11-01", "m-20261101-1"))
    assert registry.register(spec, env, _record("2026-11-01", "m-20261101-1"))["version"] == first["version"] == 1  # a retried task
    assert registry.register(spec, env, _record("2026-11-08", "m-20261108-1"))["version"] == 2
    rerun = registry.register(spec, env, _record("2026-11-01", "m-20261101-2"))  # the date cleared and run again
    assert rerun["version"] == 1 and rerun["superseded"] == ["m-20261101-1"]
    assert sorted((v["version"], v["model_name"]) for v in registry.versions(spec, env)) == [(1, "m-20261101-2"), (2, "m-20261108-1")]


def test_concurrent_registrations_and_baselines_never_collide(lake, spec, env):
    from gated_ml.evaluation import registry
    from gated_ml.quality import baseline

    dates = [f"2026-12-{d:02d}" for d in range(1, 9)]
    start, numbers = threading.Barrier(len(dates)), []

    def register(ds):
        start.wait()
        numbers.append(registry.register(spec, env, _record(ds, f"m-{ds}"))["version"])

    threads = [threading.Thread(target=register, args=(ds,)) for ds in dates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers) == list(range(1, len(dates) + 1))

    import pandas as pd

    frame = pd.DataFrame({c.name: ([1.0, 2.0, 3.0, 4.0] if c.type == "double" else ["Normal", "Abnormal"] * 2) for c in spec.columns})
    winners = [baseline.accept(spec, env, baseline.compute(spec, frame, ds))["source_ds"] for ds in ("2026-11-08", "2026-11-01")]
    assert winners == ["2026-11-08", "2026-11-08"]  # the second proposal keeps the first accepted baseline
    history = storage.read_text(jr.locations(spec, env).baseline() + "history.jsonl").splitlines()
    assert len(history) == 1


def test_a_smoke_test_after_a_newer_deployment_is_skipped_never_failed(lake, spec, env, monkeypatch):
    """The pool serialises each deployment task: a newer date may deploy between a run's deploy and its smoke test."""
    from gated_ml.errors import SkipDeployment, SmokeTestFailed
    from gated_ml.evaluation import registry
    from gated_ml.stages import deployment

    ours = registry.register(spec, env, _record("2026-11-01", "m-20261101-1"))
    newer = registry.register(spec, env, _record("2026-11-08", "m-20261108-1"))
    endpoint = {"endpoint_name": "vertebral-column", "endpoint_config": "epc-20261101-1"}
    registry.crown(spec, env, ours["version"], "epc-20261101-1")

    def disagree(*args):  # the newer run switches the endpoint while this smoke test runs
        registry.crown(spec, env, newer["version"], "epc-20261108-1")
        raise SmokeTestFailed("smoke test: endpoint and batch transform disagree")

    monkeypatch.setattr(deployment, "check_agreement", disagree)
    with pytest.raises(SkipDeployment, match=r"while the smoke test ran, the endpoint vertebral-column serves version 2 \(ds=2026-11-08"):
        deployment.smoke_test(spec, env, _run("2026-11-01"), endpoint, [], client=None)
    monkeypatch.setattr(deployment, "check_agreement", lambda *a: pytest.fail("not called once a newer model serves"))
    with pytest.raises(SkipDeployment, match="since this run deployed"):
        deployment.smoke_test(spec, env, _run("2026-11-01"), endpoint, [], client=None)

    registry.crown(spec, env, ours["version"], "epc-20261101-1")  # still ours: a disagreement fails the task
    monkeypatch.setattr(deployment, "check_agreement", lambda *a: (_ for _ in ()).throw(SmokeTestFailed("disagree")))
    with pytest.raises(SmokeTestFailed):
        deployment.smoke_test(spec, env, _run("2026-11-01"), endpoint, [], client=None)
    monkeypatch.setattr(deployment, "check_agreement", lambda *a: 10)
    assert deployment.smoke_test(spec, env, _run("2026-11-01"), endpoint, [], client=None) == {"rows": 10, "agree": True}
