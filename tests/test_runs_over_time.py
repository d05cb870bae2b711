"""Runs over time through Airflow's own scheduler on PostgreSQL (tests/harness), never ``dag.test()``.

One cluster for the module, on a PostgreSQL and a lake of its own, running two cheaper copies
of ``vertebral_column`` (2 tuning jobs instead of 10; the suites written from the copies into
the cluster's own GX folder):

- ``vertebral_column``: the four replay batches (2026-11-01..2026-11-22) land in its lake, then
  Airflow's backfill of 2026-11-01..2026-11-15 runs three dates, two at a time; afterwards the
  run of 2026-11-08 is cleared and runs again.
- ``vertebral_column_late`` (arrival time-out 30 s, poke every 2 s): no batch ever lands; its run
  of 2026-11-01 is triggered before the backfill and waits in the triggerer meanwhile.

The runs are made once (module-scoped fixtures) and the tests read what they left: the
metadata through the REST API, the outputs from the lake.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.fixtures import lake_of, land, running_project_cluster, spec_copy
from harness.postgres import PostgresServer

pytestmark = [pytest.mark.scheduler, pytest.mark.e2e]

UTC = dt.UTC
PIPELINE, LATE = "vertebral_column", "vertebral_column_late"
DATES = ("2026-11-01", "2026-11-08", "2026-11-15")  # the backfill (weekly: Sundays)
LANDED = (*DATES, "2026-11-22")  # every replay batch: the last one is after the backfill's dates
CLEARED = "2026-11-08"
LATE_TIMEOUT_S = 30
GATES = ("landing", "curated", "splits", "transform_input", "predictions")
SPLITS = ("train", "validation", "test")
DEPLOYMENT = ("deployment.deploy_endpoint", "deployment.smoke_test_endpoint", "deployment.register_model_version")


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _day(ds: str) -> dt.date:
    return dt.date.fromisoformat(ds)


def _ds(run: dict) -> str:
    return _time(run["logical_date"]).date().isoformat()


class Lake:
    """What a pipeline's runs left in the cluster's lake (plain files: the test reads them itself)."""

    def __init__(self, root: Path, pipeline: str):
        self.root, self.pipeline = root, pipeline
        self.base = root / "gated-ml-lake" / pipeline

    def json(self, *parts: str):
        return json.loads(self.base.joinpath(*parts).read_text())

    def landed_rows(self, ds: str) -> int:
        """Data rows of the raw ARFF batch in landing/ds=…/ (the lines after @data)."""
        text = (self.base / "landing" / f"ds={ds}" / "column_2C_weka.arff").read_text()
        body = text.split("@data", 1)[1] if "@data" in text else text.split("@DATA", 1)[1]
        return sum(1 for line in body.splitlines() if line.strip() and not line.startswith("%"))

    def curated_rows(self, ds: str) -> int:
        return pq.read_table(self.base / "curated" / f"ds={ds}").num_rows

    def split_files(self, ds: str) -> dict[str, bytes]:
        return {name: (self.base / "features" / f"ds={ds}" / name / f"{name}.csv").read_bytes() for name in SPLITS}

    def versions(self) -> list[dict]:
        folder = self.base / "registry" / "versions"
        return sorted((json.loads(p.read_text()) for p in folder.glob("*.json")), key=lambda v: v["version"])

    def champion(self) -> dict | None:
        path = self.base / "registry" / "champion.json"
        return json.loads(path.read_text()) if path.exists() else None

    def history(self) -> list[dict]:
        return [json.loads(line) for line in (self.base / "baseline" / "history.jsonl").read_text().splitlines() if line.strip()]

    def snapshot(self) -> dict:
        """The registry, baseline and every date's window and splits, as they are now (``None``: not written)."""

        def read(what, *args):
            try:
                return what(*args)
            except FileNotFoundError:
                return None

        return {
            "versions": self.versions(),
            "champion": self.champion(),
            "history": read(self.history),
            "baseline_ds": (read(self.json, "baseline", "stats.json") or {}).get("source_ds"),
            "windows": {ds: read(self.json, "features", f"ds={ds}", "window.json") for ds in DATES},
            "splits": {ds: read(self.split_files, ds) for ds in DATES},
        }


# -- the runs (once for the module) -----------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    """A cluster of its own (PostgreSQL, home, lake) running the two spec copies."""
    specs = tmp_path_factory.mktemp("specs")
    cheap = {"tuning": {"max_jobs": 2, "max_parallel": 2}}
    spec_copy(specs, PIPELINE, **cheap, arrival={"timeout_minutes": 10, "poke_seconds": 2})
    spec_copy(specs, PIPELINE, name=LATE, **cheap, arrival={"timeout_minutes": LATE_TIMEOUT_S / 60, "poke_seconds": 2})
    with PostgresServer() as postgres, running_project_cluster(postgres.url, specs, specs / "gx", keep_logs=lambda: bool(request.session.testsfailed)) as c:
        yield c


@pytest.fixture(scope="module")
def late_run(cluster):
    """The run of a date whose batch never lands, triggered first: it waits while the backfill runs."""
    triggered = dt.datetime.now(UTC)
    return {"run_id": cluster.trigger(LATE, _day(DATES[0])), "triggered": triggered}


@pytest.fixture(scope="module")
def backfill(cluster, late_run):
    """Upstream lands every replay batch; Airflow's backfill runs 2026-11-01..2026-11-15, two at a time."""
    landed = land(cluster, PIPELINE, LANDED[0], LANDED[-1])
    assert [u.rsplit("/", 2)[1] for u in landed] == [f"ds={d}" for d in LANDED]
    planned = cluster.backfill(PIPELINE, _day(DATES[0]), _day(DATES[-1]), max_active_runs=2, dry_run=True)
    before, started = dt.datetime.now(UTC), time.monotonic()
    record = cluster.backfill(PIPELINE, _day(DATES[0]), _day(DATES[-1]), max_active_runs=2)
    finished = cluster.wait_for_runs(PIPELINE, len(DATES), timeout=1200, run_type="backfill", poll=1)
    wall, after = time.monotonic() - started, dt.datetime.now(UTC)
    runs = {_ds(r): r for r in cluster.runs(PIPELINE, run_type=["backfill"])}
    tis = {ds: cluster.task_instances(PIPELINE, r["dag_run_id"]) for ds, r in runs.items()}
    print(f"\nbackfill of {len(DATES)} dates (max_active_runs 2): {wall:.1f}s; runs {[round(r['duration'], 1) for r in runs.values()]}s")
    return {
        "planned": [_ds(b) for b in planned["backfills"]],
        "record": record,
        "finished": finished,
        "runs": runs,
        "tis": tis,
        "before": before,
        "after": after,
        "wall": wall,
        "lake": Lake(lake_of(cluster), PIPELINE).snapshot(),
    }


@pytest.fixture(scope="module")
def rerun(cluster, backfill):
    """The run of 2026-11-08 cleared (every task, REST ``POST .../dagRuns/{run}/clear``) and run again."""
    run_id = backfill["runs"][CLEARED]["dag_run_id"]
    before, started = dt.datetime.now(UTC), time.monotonic()
    to_clear = cluster.clear_run(PIPELINE, run_id, dry_run=True)["task_instances"]
    cleared = cluster.clear_run(PIPELINE, run_id)
    deadline, run = started + 900, {}
    while time.monotonic() < deadline:  # finished again, after the clear
        run = cluster.run(PIPELINE, run_id)
        if run["state"] in ("success", "failed") and run["end_date"] and _time(run["end_date"]) >= before:
            break
        time.sleep(1)
    else:
        raise TimeoutError(f"the cleared run {run_id} did not finish again: {run}")
    wall, after = time.monotonic() - started, dt.datetime.now(UTC)
    print(f"\nre-run of {CLEARED}: {wall:.1f}s measured, {run['duration']:.1f}s by the REST API")
    return {
        "run_id": run_id,
        "to_clear": to_clear,
        "cleared": cleared,
        "run": run,
        "tis": {t["task_id"]: t for t in cluster.task_instances(PIPELINE, run_id)},
        "before": before,
        "after": after,
        "wall": wall,
        "lake": Lake(lake_of(cluster), PIPELINE).snapshot(),
    }


# -- (a) the backfill ---------------------------------------------------------------------------


def test_backfill_runs_three_dates_two_at_a_time(backfill):
    assert backfill["planned"] == list(DATES)
    assert backfill["record"]["max_active_runs"] == 2 and backfill["record"]["dag_id"] == PIPELINE
    runs = backfill["runs"]
    assert sorted(runs) == list(DATES)
    assert {ds: r["state"] for ds, r in runs.items()} == dict.fromkeys(DATES, "success"), {
        ds: {t["task_id"]: t["state"] for t in tis if t["state"] != "success"} for ds, tis in backfill["tis"].items()
    }
    for ds, tis in backfill["tis"].items():
        states = {t["task_id"]: t["state"] for t in tis}
        assert {s for t, s in states.items() if t not in DEPLOYMENT} == {"success"}, (ds, states)

    # real start and end dates (not the logical date), inside the time the test watched
    spans = {ds: (_time(r["start_date"]), _time(r["end_date"])) for ds, r in runs.items()}
    slack = dt.timedelta(seconds=2)
    for ds, (start, end) in spans.items():
        assert backfill["before"] - slack <= start < end <= backfill["after"] + slack, (ds, start, end)
        assert abs(runs[ds]["duration"] - (end - start).total_seconds()) < 1
    # two dates at once, never three: the backfill's max_active_runs
    moments = sorted({s for s, _ in spans.values()})
    at_once = max(sum(1 for s, e in spans.values() if s <= m < e) for m in moments)
    assert at_once == 2, spans
    assert spans["2026-11-15"][0] >= min(spans["2026-11-01"][1], spans["2026-11-08"][1]) - slack  # the third waited for a slot


def test_each_date_trains_on_exactly_its_window(backfill, cluster):
    lake = Lake(lake_of(cluster), PIPELINE)
    landed = {ds: lake.landed_rows(ds) for ds in LANDED}
    assert sum(landed.values()) == 310 and landed["2026-11-01"] == 217  # the history, then weekly increments
    for ds in DATES:
        assert lake.curated_rows(ds) == landed[ds]  # the ETL kept every row of its batch
    for ds in DATES:
        window = backfill["lake"]["windows"][ds]
        upto = [d for d in LANDED if d <= ds]
        assert window["batches"] == upto and window["refused"] == [] and window["pending"] == [], window
        assert (window["first_ds"], window["last_ds"]) == (DATES[0], ds)
        assert sum(window["rows"].values()) == sum(lake.curated_rows(d) for d in upto), (ds, window["rows"])
        files = backfill["lake"]["splits"][ds]
        lines = {name: len(body.decode().splitlines()) for name, body in files.items()}
        assert lines == {"train": window["rows"]["train"] + 1, "validation": window["rows"]["validation"] + 1, "test": window["rows"]["test"]}
        report = lake.json("evaluation", f"ds={ds}", "metrics.json")
        assert report["ds"] == ds and report["window"] == window
    # a row keeps its split as the window grows: an earlier test row never becomes a training row
    tests = [set(backfill["lake"]["splits"][ds]["test"].decode().splitlines()) for ds in DATES]
    assert tests[0] <= tests[1] <= tests[2]
    later_train = {line.split(",", 1)[1] for line in backfill["lake"]["splits"][DATES[-1]]["train"].decode().splitlines()[1:]}
    assert not {line.split(",", 1)[1] for line in tests[0] | tests[1]} & later_train


def test_three_registry_versions_one_per_date_with_separate_outputs(backfill, cluster):
    lake = Lake(lake_of(cluster), PIPELINE)
    versions = backfill["lake"]["versions"]
    assert sorted(v["ds"] for v in versions) == list(DATES), versions
    assert sorted(v["version"] for v in versions) == [1, 2, 3]
    assert all(v["superseded"] == [] for v in versions)
    for v in versions:
        ds, token = v["ds"], v["ds"].replace("-", "")
        assert v["data"]["window"] == backfill["lake"]["windows"][ds]
        assert token in v["training_job"] and token in v["model_name"], v  # job names carry the ds
        report = lake.json("evaluation", f"ds={ds}", "metrics.json")
        assert report["registry_version"] == v["version"] and report["decision"] == v["decision"]
        for gate in GATES:
            assert lake.json("quality", f"ds={ds}", f"{gate}.json")["success"] is True, (ds, gate)
        assert (lake.base / "transform" / f"ds={ds}" / "test" / "test.csv.out").is_file()
        assert (lake.base / "models" / v["training_job"] / "output" / "model.tar.gz").is_file()
    assert len({v["training_job"] for v in versions}) == len({v["model_name"] for v in versions}) == 3

    # one baseline, recorded once though two runs reached their curated gate together: the first date's
    # batch (the later one waited for it, etl.baseline_settled), as in a run of the dates one by one
    history = backfill["lake"]["history"]
    assert len(history) == 1 and history[0]["action"] == "first accepted batch", history
    assert backfill["lake"]["baseline_ds"] == history[0]["source_ds"] == DATES[0]


def test_the_newest_approved_model_serves_and_never_an_older_one_after_it(backfill, cluster):
    versions = {v["ds"]: v for v in backfill["lake"]["versions"]}
    champion = backfill["lake"]["champion"]
    approved = [ds for ds in DATES if versions[ds]["decision"] == "Approved"]
    assert approved, versions
    assert champion is not None and champion["version"] == versions[approved[-1]]["version"], (champion, approved)

    # the deployments, in the order they ran: through the pool of one slot, one at a time, dates never going back
    pool = "gated-ml-vertebral-column-endpoint"
    deploys = [(t, ds) for ds, tis in backfill["tis"].items() for t in tis if t["task_id"] in DEPLOYMENT]
    assert {t["pool"] for t, _ in deploys} == {pool}
    ran = sorted(((_time(t["start_date"]), _time(t["end_date"]), ds) for t, ds in deploys if t["state"] == "success"), key=lambda x: x[0])
    for (_, end, _), (start, _, _) in itertools.pairwise(ran):
        assert end <= start + dt.timedelta(seconds=1), ran  # one slot: never two at once
    served = [ds for _, ds in sorted((_time(t["end_date"]), ds) for t, ds in deploys if t["task_id"] == DEPLOYMENT[0] and t["state"] == "success")]
    assert served and served == sorted(served) and served[-1] == approved[-1], served
    skipped = {ds for t, ds in deploys if t["task_id"] == DEPLOYMENT[0] and t["state"] == "skipped"}
    assert skipped == set(approved) - set(served), (skipped, served)  # an approved model skipped only because a newer one served


# -- (b) a cleared date runs again -------------------------------------------------------------


def test_a_cleared_date_runs_again_with_the_same_split_and_one_version(backfill, rerun):
    assert {t["task_id"] for t in rerun["to_clear"]} == set(rerun["tis"])  # every task of the run
    assert rerun["cleared"]["state"] == "queued"  # the run waits for the scheduler again
    assert rerun["run"]["state"] == "success", {t: s["state"] for t, s in rerun["tis"].items()}
    tis = rerun["tis"]
    assert {t for t, ti in tis.items() if ti["state"] != "success"} <= set(DEPLOYMENT), tis
    assert tis["features.split"]["try_number"] == 2  # it really ran again

    old, new = backfill["lake"], rerun["lake"]
    assert new["splits"][CLEARED] == old["splits"][CLEARED]  # the same rows in every split, byte for byte
    assert new["windows"][CLEARED] == old["windows"][CLEARED]
    assert new["baseline_ds"] == old["baseline_ds"] and new["history"] == old["history"]

    before = {v["ds"]: v for v in old["versions"]}
    after = {v["ds"]: v for v in new["versions"]}
    assert sorted(v["ds"] for v in new["versions"]) == list(DATES)  # one version per date still
    assert after[CLEARED]["version"] == before[CLEARED]["version"]
    token = CLEARED.replace("-", "")
    assert f"-{token}-2" in after[CLEARED]["training_job"] and after[CLEARED]["model_name"].endswith(f"-{token}-2")  # the second try's jobs
    if after[CLEARED]["model_name"] != before[CLEARED]["model_name"]:  # a new model supersedes the one of the first run
        assert after[CLEARED]["superseded"] == [*before[CLEARED]["superseded"], before[CLEARED]["model_name"]]
    else:
        assert after[CLEARED]["superseded"] == before[CLEARED]["superseded"]
    assert {ds: v for ds, v in after.items() if ds != CLEARED} == {ds: v for ds, v in before.items() if ds != CLEARED}

    # an older date never replaces the model of a newer date that serves
    champion_ds = next(v["ds"] for v in old["versions"] if v["version"] == old["champion"]["version"])
    if champion_ds > CLEARED:
        assert tis[DEPLOYMENT[0]]["state"] == "skipped"
        assert new["champion"] == old["champion"]
    assert next(v["ds"] for v in new["versions"] if v["version"] == new["champion"]["version"]) >= champion_ds


# -- (c) a batch that never arrives ------------------------------------------------------------


def test_a_missing_batch_waits_then_fails_naming_the_key(cluster, late_run, backfill):
    run_id = late_run["run_id"]
    assert cluster.wait_for_runs(LATE, 1, timeout=600, run_ids=[run_id]) == {run_id: "failed"}
    run = cluster.run(LATE, run_id)
    tis = {t["task_id"]: t for t in cluster.task_instances(LATE, run_id)}
    sensor = tis["ingest.wait_for_batch"]
    assert sensor["state"] == "failed" and sensor["try_number"] == 1  # failed once, not retried
    assert run["duration"] >= LATE_TIMEOUT_S  # it waited for the time-out first
    assert _time(run["start_date"]) >= late_run["triggered"] - dt.timedelta(seconds=2)

    key = f"s3://gated-ml-lake/{LATE}/landing/ds={DATES[0]}/column_2C_weka.arff"
    log = cluster.task_log(LATE, run_id, "ingest.wait_for_batch", sensor["try_number"])
    assert f"no batch arrived at {key} within 0.5 minutes" in log, log[-3000:]
    assert "Pausing task as DEFERRED" in log  # it waited in the triggerer, not in a worker slot

    # nothing downstream ran, nothing was written past the landing zone
    assert {t for t, ti in tis.items() if ti["state"] == "success"} <= {"check_params", "package_code"}, tis
    assert {ti["state"] for t, ti in tis.items() if t not in ("check_params", "package_code", "ingest.wait_for_batch")} <= {"upstream_failed", None}
    written = Lake(lake_of(cluster), LATE).base
    assert {p.name for p in written.iterdir()} <= {"code", "runs"}, sorted(written.iterdir())  # package_code's upload and the run's params only


# -- (d) durations are real ----------------------------------------------------------------------


def test_a_runs_duration_is_its_wall_time(rerun):
    run = rerun["run"]
    start, end = _time(run["start_date"]), _time(run["end_date"])
    slack = dt.timedelta(seconds=2)
    assert rerun["before"] - slack <= start < end <= rerun["after"] + slack, (rerun["before"], start, end, rerun["after"])
    assert abs(run["duration"] - (end - start).total_seconds()) < 1
    assert abs(run["duration"] - rerun["wall"]) <= max(10, 0.1 * rerun["wall"]), (run["duration"], rerun["wall"])
    assert start.date().isoformat() != CLEARED  # not measured from the logical date


# -- a smoke of the benchmark (tests/benchmarks/bench_backfill.py) on these runs: no run of its own --


def _bench():
    import importlib.util

    path = Path(__file__).parent / "benchmarks" / "bench_backfill.py"
    module_spec = importlib.util.spec_from_file_location("bench_backfill", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_the_backfill_benchmark_figures_on_these_runs(backfill):
    bench = _bench()
    t0 = dt.datetime(2026, 11, 1, tzinfo=UTC)
    at = [(t0 + dt.timedelta(seconds=a), t0 + dt.timedelta(seconds=b)) for a, b in ((0, 2), (1, 3), (5, 6))]
    assert bench.busy_seconds(at) == 4.0
    assert bench.overhead(10.0, at) == {"wall": 10.0, "tasks": 3, "own": 5.0, "busy": 4.0, "per_task": 5 / 3, "idle_per_task": 2.0}

    figures = bench.backfill_figures(list(backfill["runs"].values()), backfill["wall"])
    assert (figures["runs"], figures["at_once"], figures["states"]) == (3, 2, ["success"])
    assert figures["first_to_last"] <= backfill["wall"] + 2
    first = bench.run_overhead(backfill["runs"][DATES[0]], backfill["tis"][DATES[0]])
    assert first["tasks"] >= 20 and 0 < first["busy"] <= first["wall"] + 1 and first["own"] >= first["busy"] - 1
    assert first["idle_per_task"] > -0.1, first
