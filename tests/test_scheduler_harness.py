"""The project's DAGs under Airflow's own processes on PostgreSQL (tests/harness), and the
team deployment (docker-compose.yaml, Dockerfile) checked against what the harness runs."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from harness.airflow_cluster import PROCESSES
from harness.fixtures import PIPELINES, ROOT, SETUP, lake_of, land, project_cluster
from harness.postgres import PostgresServer

pytestmark = [pytest.mark.scheduler, pytest.mark.e2e]

UTC = dt.UTC


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _listeners(pid: int) -> set[tuple[str, int]]:
    """TCP addresses a process and its descendants listen on."""
    found = set()
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            found |= {(c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            pass
    return found


def test_processes_up_and_dags_parsed(airflow_cluster, postgres):
    for name in PROCESSES:
        assert airflow_cluster.process(name).poll() is None, airflow_cluster.log_tail(name)
    health = airflow_cluster.health()
    assert {c: health[c]["status"] for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == dict.fromkeys(
        ("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy"
    )

    dags = {d["dag_id"]: d for d in airflow_cluster.dags()}
    assert set(PIPELINES) == {"car_evaluation", "vertebral_column", "wine_quality"}
    assert set(PIPELINES) <= set(dags), sorted(dags)
    assert [(p, dags[p]["is_paused"], dags[p]["has_import_errors"]) for p in PIPELINES] == [(p, False, False) for p in PIPELINES]
    assert airflow_cluster.import_errors() == []
    # The project's set-up ran: one pool of one slot per pipeline's endpoint (deployments wait for it).
    pools = {p["name"]: p["slots"] for p in airflow_cluster.api.paged("pools", "pools")}
    assert {p: pools.get(f"gated-ml-{p.replace('_', '-')}-endpoint") for p in PIPELINES} == dict.fromkeys(PIPELINES, 1), pools

    # The metadata DB is this PostgreSQL: the three job runners heartbeat in it.
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="airflow", password=postgres.password, dbname="airflow") as conn:
        jobs = {row[0] for row in conn.execute("SELECT job_type FROM job WHERE state = 'running'")}
        paused = dict(conn.execute("SELECT dag_id, is_paused FROM dag").fetchall())
    assert {"SchedulerJob", "TriggererJob", "DagProcessorJob"} <= jobs
    assert all(paused[p] is False for p in PIPELINES)

    # Nothing listens beyond loopback: the api-server on its port, PostgreSQL on its port, no log servers.
    listening = set()
    for name in PROCESSES:
        listening |= _listeners(airflow_cluster.process(name).pid)
    assert listening == {("127.0.0.1", airflow_cluster.port)}
    postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    assert _listeners(postmaster) == {("127.0.0.1", postgres.port)}


def test_backfill_dates_through_api_and_cli(airflow_cluster):
    """Airflow's backfill (dry run): the REST API and ``airflow backfill create`` agree on the weekly dates."""
    planned = airflow_cluster.backfill("vertebral_column", dt.date(2026, 10, 1), dt.date(2026, 10, 31), dry_run=True)
    dates = [_time(b["logical_date"]).date().isoformat() for b in planned["backfills"]]
    assert dates == ["2026-10-04", "2026-10-11", "2026-10-18", "2026-10-25"]  # @weekly: Sundays
    out = airflow_cluster.cli("backfill", "create", "--dag-id", "vertebral_column", "--from-date", "2026-10-01", "--to-date", "2026-10-31", "--dry-run").stdout
    assert re.findall(r"\| (\d{4}-\d\d-\d\d) 00:00:00\+00:00", out) == dates, out


def test_vertebral_column_run(airflow_cluster):
    """A real run of the whole pipeline: start_date is the real start, duration the wall time."""
    ds = dt.date(2026, 11, 1)
    assert [u.rsplit("/", 2)[1] for u in land(airflow_cluster, "vertebral_column", str(ds), str(ds))] == [f"ds={ds}"]  # upstream delivers
    before = dt.datetime.now(UTC)
    started = time.monotonic()
    run_id = airflow_cluster.trigger("vertebral_column", ds)
    finished = airflow_cluster.wait_for_runs("vertebral_column", 1, timeout=600, run_ids=[run_id], poll=1)
    wall = time.monotonic() - started
    after = dt.datetime.now(UTC)

    tasks = airflow_cluster.task_states("vertebral_column", run_id)
    assert finished == {run_id: "success"}, tasks
    assert tasks and set(tasks.values()) == {"success"}, tasks

    run = airflow_cluster.run("vertebral_column", run_id)
    assert run["run_type"] == "manual"
    assert _time(run["logical_date"]) == dt.datetime(2026, 11, 1, tzinfo=UTC)
    start, end = _time(run["start_date"]), _time(run["end_date"])
    assert before - dt.timedelta(seconds=2) <= start <= end <= after + dt.timedelta(seconds=2), (before, start, end, after)
    assert abs(run["duration"] - (end - start).total_seconds()) < 1
    assert abs(run["duration"] - wall) <= max(30, 0.15 * wall), (run["duration"], wall)

    lake = lake_of(airflow_cluster)
    report = json.loads((lake / "gated-ml-lake" / "vertebral_column" / "evaluation" / f"ds={ds}" / "metrics.json").read_text())
    assert report["decision"] == "Approved"
    print(f"\nvertebral_column under the scheduler: {run['duration']:.1f}s run, {wall:.1f}s from trigger to seen finished")


# -- the team deployment against the harness -------------------------------------------------

# Harness settings compose does not share, and why.
HARNESS_ONLY = {
    "AIRFLOW__API__HOST": "tests bind the api-server to loopback; a container must listen on its network",
    "AIRFLOW__API__PORT": "a free port per test session",
    "AIRFLOW__API__BASE_URL": "the harness api-server's loopback URL",
    "AIRFLOW__API__WORKERS": "one worker on the 2-core test machine",
    "AIRFLOW__API__SECRET_KEY": "generated per test session",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "tests decide which runs exist; a deployment runs the @weekly schedule",
}
VAR = re.compile(r"^\$\{(\w+)(:[?-][^}]*)?\}$")


def _substitute(value: str) -> str:
    """Compose's ${VAR:?msg} / ${VAR:-default} with placeholder values, for parsing."""
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: f"env-{m.group(1).lower()}", value)


def _command_line(service: dict) -> str:
    """What a service runs, as a shell line: the image's entrypoint (``airflow``) and its command,
    or the script of an ``entrypoint: [/bin/bash, -c]``."""
    entrypoint, command = service.get("entrypoint"), service["command"]
    if entrypoint is None:
        return f"airflow {command}"
    assert entrypoint == ["/bin/bash", "-c"] and isinstance(command, list) and len(command) == 1, (entrypoint, command)
    return command[0]


def _mount(volume: str) -> tuple[str, str]:
    """``source:target[:mode]`` -> (source, target)."""
    source, target = volume.split(":")[:2]
    return source, target


def test_compose_and_image_match_the_harness(tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    harness = project_cluster(tmp_path, PostgresServer().url)

    # The same processes: one service per harness process, first the DB migrated and the project's
    # set-up run (the endpoint pools: the harness runs `python <SETUP>` after `db migrate` too), a postgres service.
    airflow_services = {name: s for name, s in services.items() if s.get("build") == "."}
    commands = {_command_line(s): name for name, s in airflow_services.items()}
    init = f"airflow db migrate && python {' '.join(SETUP)}"
    assert set(commands) == {init, *(f"airflow {p}" for p in PROCESSES)}, commands
    assert services["postgres"]["image"].startswith("postgres:")
    for command, name in commands.items():
        depends = {k: v["condition"] for k, v in airflow_services[name].get("depends_on", {}).items()}
        expected = {"postgres": "service_healthy"}
        if command != init:  # the harness migrates and sets up before it starts anything
            expected[commands[init]] = "service_completed_successfully"
        assert depends == expected, name

    envs = [s["environment"] for s in airflow_services.values()]
    assert all(e == envs[0] for e in envs)
    env = {k: str(v) for k, v in envs[0].items()}
    mounts = dict(_mount(v) for v in airflow_services[commands["airflow scheduler"]]["volumes"])

    for key, value in harness.env.items():
        if not key.startswith("AIRFLOW__") or key in HARNESS_ONLY:
            continue
        assert key in env, f"docker-compose.yaml lacks {key} (the harness sets {value!r})"
        if key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"):
            ours, theirs = make_url(value), make_url(_substitute(env[key]))
            assert theirs.drivername == ours.drivername == "postgresql+psycopg", key
            assert (theirs.username, theirs.database, theirs.host) == ("airflow", "airflow", "postgres"), key
            assert env[key].count("${POSTGRES_PASSWORD:?") == 1, key
        elif key == "AIRFLOW__CORE__EXECUTION_API_SERVER_URL":
            url = urlsplit(env[key])
            assert (url.hostname, url.path) == (commands["airflow api-server"], "/execution/"), env[key]
        elif key == "AIRFLOW__API_AUTH__JWT_SECRET":
            assert VAR.match(env[key]) and ":?" in env[key], "the JWT secret must come from .env"
        elif key == "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS":
            assert env[key].rsplit(":", 1)[1] == value.rsplit(":", 1)[1] == "admin"
        elif key in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "AIRFLOW__GATED_ML__LAKE_ROOT"):
            assert env[key] in mounts.values(), (key, env[key], mounts)
        elif key == "AIRFLOW__GATED_ML__TARGET":
            assert env[key] == "${GATED_ML_TARGET:-local}" and value == "local"
        else:
            assert env[key] == value, key

    # The project's folders mounted where the settings point; PYTHONPATH is the plugins folder.
    assert {src: dst for src, dst in mounts.items() if src.startswith("./")} == {
        f"./{d}": f"/opt/airflow/{d}" for d in ("dags", "plugins", "include", "great_expectations")
    }
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == mounts["./dags"]
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == env["PYTHONPATH"] == mounts["./plugins"]
    assert harness.env["PYTHONPATH"] == harness.env["AIRFLOW__CORE__PLUGINS_FOLDER"]
    assert env["AIRFLOW__GATED_ML__LAKE_ROOT"] == mounts["lake"]

    # No literal secrets: every password/secret/key value is a ${VAR} from .env.
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|FERNET", key) or ("://" in str(value) and "@" in str(value)):
                assert "${" in str(value), f"{key} must come from the environment"

    # The image's Python dependencies are requirements.lock, exactly (synced, nothing else installed).
    dockerfile = (ROOT / "Dockerfile").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    python = re.search(r"--python-version (\d+\.\d+)", lock).group(1)
    assert re.search(rf"^FROM python:{re.escape(python)}[-\w.]*$", dockerfile, re.M), f"the base image's Python must be {python}"
    assert re.search(r"^COPY requirements\.lock /requirements\.lock$", dockerfile, re.M)
    installs = re.findall(r"(?:pip|uv pip) (?:install|sync)[^&\n\\]*", dockerfile)
    uv_version = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert installs == ["pip install --no-cache-dir uv==${UV_VERSION} ", "uv pip sync --no-cache --python /opt/venv/bin/python /requirements.lock"], installs
    assert f"ARG UV_VERSION={uv_version}" in dockerfile
    assert 'ENTRYPOINT ["airflow"]' in dockerfile and "PATH=/opt/venv/bin:$PATH" in dockerfile
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", lock, re.M))
    assert pins["psycopg"] == pins["psycopg-binary"] and "psycopg2" not in pins and "psycopg2-binary" not in pins
