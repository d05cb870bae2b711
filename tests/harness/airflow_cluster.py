"""Airflow's own processes on a real database: ``AirflowCluster``.

Owns the processes and their environment: ``airflow db migrate``, then ``scheduler``,
``dag-processor``, ``triggerer`` and ``api-server`` (on 127.0.0.1 and a free port) as
subprocesses, each in its own process group with its output in ``<home>/process-logs/``;
``LocalExecutor``; DAGs unpaused at creation; a generated JWT secret and API secret key;
one simple-auth-manager admin with a generated password (written to the password file
before the api-server starts). Tasks reach the execution API of this
api-server (``[core] execution_api_server_url``).

Cron schedules are off by default (``[scheduler] use_job_schedule = False``): unpaused DAGs
would otherwise start a scheduled run each as soon as they are parsed, and tests want to
decide which runs exist. Manual runs and backfills are scheduled as usual.

Queries go through the REST API (``harness.rest``); ``cli()`` runs any ``airflow`` command
with the same environment. ``process(name)`` is the ``Popen``; ``kill(name)`` injects a
crash (the process group, SIGKILL) and ``start_process(name)`` starts it again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

import httpx

from harness.ports import free_port
from harness.rest import ApiError, RestClient

PROCESSES = ("scheduler", "dag-processor", "triggerer", "api-server")
# Health components of /api/v2/monitor/health that heartbeat, by process.
HEARTBEATS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
FINISHED = ("success", "failed")
ADMIN = "admin"


def _iso(value: dt.datetime | dt.date | str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


class AirflowCluster:
    def __init__(
        self,
        home: Path,
        db_url: str,
        dags_folder: Path,
        plugins_folder: Path,
        env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        scheduled_runs: bool = False,
        startup_timeout: float = 600,
    ):
        self.home = Path(home)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.logs = self.home / "process-logs"
        self.password = secrets.token_urlsafe(16)
        self._procs: dict[str, subprocess.Popen] = {}
        self._killed: set[str] = set()  # stopped on purpose (kill()): not a crash for the waits
        self._started: dict[str, dt.datetime] = {}
        self._log_files: dict[str, IO] = {}
        self._client: RestClient | None = None

        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        venv_bin = str(Path(sys.executable).parent)
        self.env: dict[str, str] = {
            **inherited,
            "PATH": f"{venv_bin}{os.pathsep}{inherited.get('PATH', '')}",
            "PYTHONPATH": str(plugins_folder),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            # Airflow derives the async URL as postgresql+asyncpg; psycopg 3 does async itself.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(scheduled_runs),
            **(env or {}),
        }

    # -- processes -------------------------------------------------------------------------

    def _argv(self, name: str) -> list[str]:
        argv = [sys.executable, "-m", "airflow", name]
        if name == "api-server":
            argv += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if name in ("scheduler", "triggerer"):
            # All processes share this machine's log folder: no log-serving listeners (8793/8794).
            argv.append("--skip-serve-logs")
        return argv

    def start(self, dag_ids: Iterable[str] | None = None) -> AirflowCluster:
        """Migrate the DB, start the four processes, wait until healthy and the DAGs are parsed."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=self.startup_timeout)
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        password_file.write_text(json.dumps({ADMIN: self.password}) + "\n")
        password_file.chmod(0o600)
        try:
            for name in PROCESSES:
                self.start_process(name)
            self.wait_healthy(self.startup_timeout, dag_ids)
        except BaseException:
            self.stop()
            raise
        return self

    def start_process(self, name: str) -> subprocess.Popen:
        """Start (or restart, after it died or was killed) one of ``PROCESSES``."""
        if name not in PROCESSES:
            raise ValueError(f"unknown process {name!r}; one of {PROCESSES}")
        old = self._procs.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {old.pid})")
        log = self._log_files.get(name) or open(self.logs / f"{name}.log", "ab")
        self._log_files[name] = log
        log.write(f"\n==== harness: starting {name} at {dt.datetime.now(dt.UTC).isoformat()}\n".encode())
        log.flush()
        self._procs[name] = subprocess.Popen(
            self._argv(name),
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._killed.discard(name)
        self._started[name] = dt.datetime.now(dt.UTC)
        return self._procs[name]

    def process(self, name: str) -> subprocess.Popen:
        return self._procs[name]

    def kill(self, name: str, sig: int = signal.SIGKILL, group: bool = True) -> int | None:
        """Send ``sig`` to a process (``group``: and everything it started, as a crashed container
        would lose them); waits then no longer treat its exit as a failure. Returns its exit code
        (or ``None`` for a signal it survived). ``start_process(name)`` brings it back."""
        proc = self._procs[name]
        self._killed.add(name)
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if name not in self._killed and proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM every process (scheduler first, api-server last), then SIGKILL what is left of each group."""
        order = [n for n in ("scheduler", "triggerer", "dag-processor", "api-server") if n in self._procs]
        for name in order:
            if self._procs[name].poll() is None:
                self._procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in order:
            proc = self._procs[name]
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group: executor workers, task supervisors, parsing processes, api workers
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        self._procs.clear()
        self._killed.clear()
        for log in self._log_files.values():
            log.close()
        self._log_files.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> AirflowCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- commands and API ------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """``airflow <args>`` with the cluster's environment; output captured as text."""
        return self.python("-m", "airflow", *args, check=check, timeout=timeout)

    def python(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """``python <args>`` (this interpreter) with the cluster's environment, as its processes
        see it (e.g. ``python("-m", "gated_ml.cli", "setup")``); output captured as text."""
        done = subprocess.run([sys.executable, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"python {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
        return done

    @property
    def api(self) -> RestClient:
        if self._client is None:
            self._client = RestClient(self.base_url, ADMIN, self.password)
        return self._client

    def health(self) -> dict:
        return self.api.request("GET", "monitor/health", auth=False).json()

    def _fresh(self, health: dict) -> bool:
        """Healthy, with a heartbeat from the running process (a killed one stays "healthy"
        in the health endpoint until its last heartbeat is older than the threshold)."""
        if health["metadatabase"]["status"] != "healthy":
            return False
        for name, component in HEARTBEATS.items():
            beat = health[component].get(f"latest_{component}_heartbeat")
            if health[component]["status"] != "healthy" or not beat:
                return False
            if name in self._started and dt.datetime.fromisoformat(beat) < self._started[name]:
                return False
        return True

    def wait_healthy(self, timeout: float = 600, dag_ids: Iterable[str] | None = None) -> None:
        """Every component healthy in ``/api/v2/monitor/health`` (heartbeats from the current
        processes) and the DAGs parsed into the DB (``dag_ids`` if given, else at least one DAG)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = self.health()
                last = health
                if self._fresh(health):
                    parsed = {d["dag_id"] for d in self.dags()}
                    last = {"health": health, "dags": sorted(parsed)}
                    if (set(dag_ids) <= parsed) if dag_ids else parsed:
                        return
            except (httpx.HTTPError, ApiError, KeyError, ValueError) as exc:  # not listening yet
                last = exc
            time.sleep(2)
        raise TimeoutError(f"cluster not healthy after {timeout:.0f}s: {last}\n" + "\n".join(f"--- {n}\n{self.log_tail(n, 15)}" for n in self._procs))

    def dags(self) -> list[dict]:
        return self.api.paged("dags", "dags")

    def import_errors(self) -> list[dict]:
        return self.api.paged("importErrors", "import_errors")

    def trigger(self, dag_id: str, logical_date: dt.datetime | dt.date | str, conf: dict | None = None, run_id: str | None = None) -> str:
        """A manual run for ``logical_date`` (REST ``POST /dags/{dag_id}/dagRuns``); its run_id."""
        body = {"logical_date": _iso(logical_date), "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.api.post(f"dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def backfill(
        self,
        dag_id: str,
        from_date: dt.datetime | dt.date | str,
        to_date: dt.datetime | dt.date | str,
        max_active_runs: int = 1,
        reprocess_behavior: str = "none",
        run_backwards: bool = False,
        conf: dict | None = None,
        dry_run: bool = False,
    ) -> dict:
        """Airflow's own backfill (REST ``POST /backfills``): the backfill record (``id``, ...).

        The runs are created at once (queued) and started by the scheduler, at most
        ``max_active_runs`` at a time. ``dry_run``: ``POST /backfills/dry_run``, the runs it
        would create (``{"backfills": [{"logical_date": ...}, ...], "total_entries": n}``).
        """
        return self.api.post(
            "backfills/dry_run" if dry_run else "backfills",
            {
                "dag_id": dag_id,
                "from_date": _iso(from_date),
                "to_date": _iso(to_date),
                "max_active_runs": max_active_runs,
                "reprocess_behavior": reprocess_behavior,
                "run_backwards": run_backwards,
                "dag_run_conf": conf or {},
            },
        )

    def runs(self, dag_id: str, **filters) -> list[dict]:
        """The DAG's runs as the REST API returns them (``run_type=["backfill"]``, ``state=[...]``, ...)."""
        return self.api.paged(f"dags/{dag_id}/dagRuns", "dag_runs", **filters)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.api.get(f"dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_runs(
        self, dag_id: str, n: int, timeout: float = 600, *, run_ids: Iterable[str] | None = None, run_type: str | None = None, poll: float = 2
    ) -> dict[str, str]:
        """Wait until ``n`` runs of the DAG (of ``run_ids``/``run_type`` if given) have finished.

        Returns ``{run_id: state}`` of the finished runs (``success`` or ``failed``). Raises
        ``TimeoutError`` with every run's state and the scheduler's last lines.
        """
        wanted = set(run_ids) if run_ids is not None else None
        filters = {"run_type": [run_type]} if run_type else {}
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            states = {r["dag_run_id"]: r["state"] for r in self.runs(dag_id, **filters) if wanted is None or r["dag_run_id"] in wanted}
            finished = {k: v for k, v in states.items() if v in FINISHED}
            if len(finished) >= n:
                return finished
            time.sleep(poll)
        raise TimeoutError(f"{dag_id}: fewer than {n} runs finished after {timeout:.0f}s: {states}\n--- scheduler\n{self.log_tail('scheduler', 20)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's task instances as the REST API returns them (state, try_number, start/end dates, duration, ...)."""
        return self.api.paged(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}`` of one run (mapped tasks as ``task_id[map_index]``)."""
        tis = self.task_instances(dag_id, run_id)
        return {(t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]"): t["state"] for t in tis}

    def clear_run(self, dag_id: str, run_id: str, only_failed: bool = False, dry_run: bool = False) -> dict:
        """Clear every task of a run (REST ``POST /dags/{dag_id}/dagRuns/{run_id}/clear``), as the UI's
        "Clear" of a run does: the run is queued again and the scheduler re-runs it. Returns the run
        (``dry_run``: ``{"task_instances": [...], ...}``, the task instances it would clear)."""
        return self.api.post(f"dags/{dag_id}/dagRuns/{run_id}/clear", {"dry_run": dry_run, "only_failed": only_failed})

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """One try's task log through the REST API, one line per record (``level event`` and any error detail)."""
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.api.request("GET", path, params={"full_content": True}, headers={"Accept": "application/json"}).json()
        lines = []
        for record in body["content"]:
            if isinstance(record, str):
                lines.append(record)
                continue
            lines.append(f"{record.get('level', '')} {record.get('event', '')}".strip())
            for detail in record.get("error_detail") or []:
                lines.append(f"  {detail.get('exc_type')}: {detail.get('exc_value')}")
        return "\n".join(lines)
