"""Benchmark: backfills through Airflow's own scheduler, and what the scheduler costs per task.

Run on demand: ``make bench`` (or, from the project root,
``PYTHONPATH=plugins .venv/bin/python tests/benchmarks/bench_backfill.py [--max-jobs N]``).
On the test harness (``tests/harness``: PostgreSQL, scheduler, dag-processor, triggerer,
api-server, LocalExecutor), each on a fresh cluster and lake, it prints side by side:

1. Airflow's backfill of the four replay dates of ``vertebral_column`` (2026-11-01..2026-11-22,
   landed first) with ``max_active_runs`` 2, then 1: the wall time from the backfill request to
   the last run seen finished, the most runs at once, the runs' own durations; the ratio.
2. One run of 2026-11-01 on a fresh lake under the scheduler (the first run of the
   ``max_active_runs`` 1 backfill, alone on its cluster) against ``dag.test()`` of the same
   date in a fresh process (SQLite, fresh lake): the run's wall time, the tasks that ran, their
   own time, and the scheduler's overhead per task, two ways:
   ``wall / tasks - own time / tasks`` (the plain figure; parallel tasks make it an
   underestimate) and ``(wall - time some task was running) / tasks`` (the time no task ran,
   spread over the tasks).

``--max-jobs N`` runs a copy of the spec with N tuning jobs instead of the spec's 10 (cheaper,
less representative). Nothing is asserted: a benchmark, not a test. Cluster start-up, the
metadata DB migration and the replay are not timed. Endpoints the runs deployed are stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "tests"))

PIPELINE = "vertebral_column"
DATES = ("2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22")
RAN = ("success", "failed")  # task states of tasks that executed (skipped ones did not)


# -- the figures (pure: tests/test_runs_over_time.py checks them on its own runs) -------------------


def _time(value) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def busy_seconds(intervals) -> float:
    """How long at least one of the ``(start, end)`` intervals was running (the measure of their union)."""
    total, current = 0.0, None
    for start, end in sorted((_time(s), _time(e)) for s, e in intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def overhead(wall: float, intervals) -> dict:
    """One run: ``wall`` seconds, the ``(start, end)`` of each task that ran. Overhead per task, two ways."""
    intervals = list(intervals)
    n = len(intervals)
    own = sum((_time(e) - _time(s)).total_seconds() for s, e in intervals)
    busy = busy_seconds(intervals)
    return {
        "wall": wall,
        "tasks": n,
        "own": own,
        "busy": busy,
        "per_task": wall / n - own / n if n else float("nan"),
        "idle_per_task": (wall - busy) / n if n else float("nan"),
    }


def run_overhead(run: dict, task_instances: list[dict]) -> dict:
    """:func:`overhead` of a run as the REST API describes it (its ``duration``, its task instances)."""
    ran = [(t["start_date"], t["end_date"]) for t in task_instances if t["state"] in RAN and t["start_date"] and t["end_date"]]
    return overhead(run["duration"], ran)


def backfill_figures(runs: list[dict], wall: float) -> dict:
    """A backfill's runs (REST records) and the measured wall time: most runs at once, their durations."""
    spans = [(_time(r["start_date"]), _time(r["end_date"])) for r in runs]
    at_once = max((sum(1 for s, e in spans if s <= m < e) for m, _ in spans), default=0)
    durations = [r["duration"] for r in runs]
    return {
        "wall": wall,
        "runs": len(runs),
        "states": sorted({r["state"] for r in runs}),
        "at_once": at_once,
        "sum_durations": sum(durations),
        "mean_duration": sum(durations) / len(durations) if durations else float("nan"),
        "first_to_last": (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds() if spans else float("nan"),
    }


# -- the measurements --------------------------------------------------------------------------------


def _specs(work: Path, max_jobs: int | None) -> tuple[Path | None, Path | None]:
    """The spec folder and GX folder of the runs: the shipped ones, or a copy with ``max_jobs`` tuning jobs."""
    if max_jobs is None:
        return None, None
    from harness.fixtures import spec_copy

    spec_copy(work / "specs", PIPELINE, tuning={"max_jobs": max_jobs})
    return work / "specs", work / "gx"


def measure_backfill(max_active_runs: int, spec_dir: Path | None, gx_dir: Path | None) -> dict:
    """A fresh PostgreSQL, cluster and lake; the four batches landed; Airflow's backfill of the four dates."""
    from harness.fixtures import land, running_project_cluster
    from harness.postgres import PostgresServer

    with PostgresServer() as postgres, running_project_cluster(postgres.url, spec_dir, gx_dir) as cluster:
        land(cluster, PIPELINE, DATES[0], DATES[-1])
        dates = [dt.date.fromisoformat(d) for d in (DATES[0], DATES[-1])]
        load_before, started = os.getloadavg()[0], time.monotonic()
        cluster.backfill(PIPELINE, *dates, max_active_runs=max_active_runs)
        cluster.wait_for_runs(PIPELINE, len(DATES), timeout=3600, run_type="backfill", poll=1)
        wall = time.monotonic() - started
        load = (load_before, os.getloadavg()[1])  # the 1-minute load when it started, the 5-minute one at the end
        runs = sorted(cluster.runs(PIPELINE, run_type=["backfill"]), key=lambda r: r["logical_date"])
        first = runs[0]
        return {
            "backfill": backfill_figures(runs, wall),
            "first_run": run_overhead(first, cluster.task_instances(PIPELINE, first["dag_run_id"])),
            "first_run_state": first["state"],
            "load": load,
        }


def measure_dag_test(spec_dir: Path | None, gx_dir: Path | None) -> dict:
    """``dag.test()`` of the first date in a fresh process: its own AIRFLOW_HOME (SQLite) and lake."""
    work = Path(tempfile.mkdtemp(prefix="gated-ml-bench-dagtest-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        PYTHONPATH=str(ROOT / "plugins"),
        AIRFLOW_HOME=str(work / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__GATED_ML__TARGET="local",
        AIRFLOW__GATED_ML__LAKE_ROOT=str(work / "lake"),
    )
    if spec_dir is not None:
        env.update(AIRFLOW__GATED_ML__SPEC_DIR=str(spec_dir), AIRFLOW__GATED_ML__GX_DIR=str(gx_dir))
    try:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        done = subprocess.run([sys.executable, __file__, "--dag-test-child"], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"dag.test() child failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        from harness.fixtures import _stop_endpoints

        _stop_endpoints(work / "lake")
        shutil.rmtree(work, ignore_errors=True)


def dag_test_child() -> None:
    """In the child process: land the first batch, ``dag.test()`` it, print the figures as one JSON line."""
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml import replay
    from gated_ml.spec import load_pipeline
    from gated_ml.targets.local import LocalTarget

    replay.land(load_pipeline(PIPELINE), LocalTarget().environment(), DATES[0], DATES[0])
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[PIPELINE]
    started = time.monotonic()
    dr = dag.test(logical_date=dt.datetime.fromisoformat(DATES[0]).replace(tzinfo=dt.UTC))
    wall = time.monotonic() - started
    ran = [(ti.start_date, ti.end_date) for ti in dr.get_task_instances() if ti.state in RAN and ti.start_date and ti.end_date]
    figures = overhead(wall, ran)
    print(json.dumps({**figures, "state": str(dr.state), "load": (os.getloadavg()[1],)}, default=str))


# -- the report --------------------------------------------------------------------------------------


def _row(label: str, a, b, ratio: bool = False, unit: str = "s") -> str:
    def cell(x):
        return f"{x:10.1f} {unit}" if isinstance(x, float) else f"{x!s:>10}  "

    shown = f"{b / a:.2f}x" if ratio and a > 0 and b > 0 else ""
    return f"  {label:<46}{cell(a)}{cell(b)}   {shown}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-jobs", type=int, default=None, help="tuning jobs of the spec copy (default: the shipped spec's)")
    parser.add_argument("--dag-test-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dag_test_child:
        return dag_test_child()

    command = "PYTHONPATH=plugins .venv/bin/python tests/benchmarks/bench_backfill.py" + (f" --max-jobs {args.max_jobs}" if args.max_jobs else "")
    work = Path(tempfile.mkdtemp(prefix="gated-ml-bench-backfill-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))  # this process lands batches: never ~/airflow
    try:
        spec_dir, gx_dir = _specs(work, args.max_jobs)
        jobs = args.max_jobs or 10
        print(f"backfill of {len(DATES)} dates ({DATES[0]}..{DATES[-1]}) of {PIPELINE} ({jobs} tuning jobs)", end="")
        print(f", LocalExecutor on PostgreSQL, {os.cpu_count()} cores")
        two = measure_backfill(2, spec_dir, gx_dir)
        one = measure_backfill(1, spec_dir, gx_dir)
        dag_test = measure_dag_test(spec_dir, gx_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    a, b = two["backfill"], one["backfill"]
    print(_row("", "mar 2", "mar 1", unit="") + "ratio 1/2")
    print(_row("wall: backfill request -> last run finished", a["wall"], b["wall"], True))
    print(_row("first run start -> last run end", a["first_to_last"], b["first_to_last"], True))
    print(_row("runs at once (most)", a["at_once"], b["at_once"]))
    print(_row("run duration, mean", a["mean_duration"], b["mean_duration"], True))
    print(_row("run states", ",".join(a["states"]), ",".join(b["states"])))
    print(_row("machine load (1 min at start, 5 min at end)", "{:.1f}, {:.1f}".format(*two["load"]), "{:.1f}, {:.1f}".format(*one["load"])))

    s, d = one["first_run"], dag_test
    n = s["tasks"]
    print(f"\none run of {DATES[0]} on a fresh lake: the scheduler (first run of the mar 1 backfill) vs dag.test()")
    print(_row("", "scheduler", "dag.test()", unit="") + "ratio")
    print(_row("run wall (start -> end)", s["wall"], d["wall"]) + f"{s['wall'] / d['wall']:.2f}x")
    print(_row("tasks that ran", s["tasks"], d["tasks"]))
    print(_row("tasks' own time (sum)", s["own"], d["own"]) + f"{s['own'] / d['own']:.2f}x")
    print(_row("time some task was running", s["busy"], d["busy"]) + f"{s['busy'] / d['busy']:.2f}x")
    print(_row("overhead/task: wall/tasks - own/tasks", s["per_task"], d["per_task"]))
    print(_row("overhead/task: (wall - busy)/tasks", s["idle_per_task"], d["idle_per_task"]))
    print(f"  scheduler vs dag.test(), per task: wall {(s['wall'] - d['wall']) / n:+.1f} s, own time {(s['own'] - d['own']) / n:+.1f} s")
    print("  (under the scheduler each task is a fresh process that parses the DAG file and imports its libraries;")
    print("   dag.test() runs every task in one warm process: most of the scheduler's cost is inside the tasks' own time)")
    print(_row("run state", one["first_run_state"], d["state"]))
    print(_row("machine load (1 min at start, 5 min at end)", "{:.1f}, {:.1f}".format(*one["load"]), "-, {:.1f}".format(*d["load"])))
    print(f"\ncommand: {command}")


if __name__ == "__main__":
    main()
