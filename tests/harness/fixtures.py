"""Session-scoped pytest fixtures: one PostgreSQL and one Airflow cluster shared by the tests,
and the helpers to run this project's DAGs on a cluster.

Registered from ``tests/conftest.py`` (``pytest_plugins``). Tests that use ``airflow_cluster``
carry the ``scheduler`` marker. The cluster runs the project's DAGs on the local target
against its own lake (``lake_of(airflow_cluster)``); endpoints the runs deployed are stopped at
the end of the session.

A cluster is set up as ``docker-compose.yaml``'s ``airflow-init`` sets up a deployment:
``airflow db migrate``, then the project's set-up (:data:`SETUP`: the endpoint pools). It may
run a folder of spec copies instead of ``include/pipelines/`` (``spec_dir``: e.g. a cheaper
``vertebral_column`` with fewer tuning jobs, :func:`spec_copy`); their gate suites are then
written to a GX folder of the cluster's own (``gx_dir``), as ``make gx-suites`` does.
Batches reach a cluster's lake the way upstream would land them: :func:`land`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from harness.airflow_cluster import AirflowCluster
from harness.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT / "include" / "pipelines"
PIPELINES = tuple(sorted(p.stem for p in SPEC_DIR.glob("*.yaml")))
# The project's set-up of a deployment after `airflow db migrate` (the pool of one slot per
# pipeline's endpoint): `python <SETUP>` with the cluster's environment. docker-compose's
# airflow-init runs the same command (tests/test_scheduler_harness.py checks).
SETUP = ("-m", "gated_ml.cli", "setup")
GX_SUITES = ("-m", "gated_ml.cli", "gx-suites")


def project_cluster(home: Path, db_url: str, spec_dir: Path | None = None, gx_dir: Path | None = None) -> AirflowCluster:
    """This project's cluster (not started): its dags/ and plugins/, the local target, a lake in ``home/lake``;
    the specs of ``spec_dir`` instead of ``include/pipelines/`` and the GX project in ``gx_dir`` when given."""
    settings = {"AIRFLOW__GATED_ML__TARGET": "local", "AIRFLOW__GATED_ML__LAKE_ROOT": str(home / "lake")}
    if spec_dir is not None:
        settings["AIRFLOW__GATED_ML__SPEC_DIR"] = str(spec_dir)
    if gx_dir is not None:
        settings["AIRFLOW__GATED_ML__GX_DIR"] = str(gx_dir)
    return AirflowCluster(home, db_url, ROOT / "dags", ROOT / "plugins", settings)


def pipelines_of(cluster: AirflowCluster) -> tuple[str, ...]:
    """The pipelines (DAG ids) the cluster runs: the specs of its spec folder."""
    folder = Path(cluster.env.get("AIRFLOW__GATED_ML__SPEC_DIR", SPEC_DIR))
    return tuple(sorted(p.stem for p in folder.glob("*.yaml")))


def lake_of(cluster: AirflowCluster) -> Path:
    return Path(cluster.env["AIRFLOW__GATED_ML__LAKE_ROOT"])


def start_project_cluster(cluster: AirflowCluster) -> AirflowCluster:
    """Write the gate suites when the cluster has a GX folder of its own, start the processes, wait
    for every pipeline's DAG, then run the project's set-up (:data:`SETUP`) with the cluster's environment."""
    if "AIRFLOW__GATED_ML__GX_DIR" in cluster.env:
        cluster.python(*GX_SUITES)
    cluster.start(dag_ids=pipelines_of(cluster))
    try:
        cluster.python(*SETUP)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextmanager
def running_project_cluster(
    db_url: str, spec_dir: Path | None = None, gx_dir: Path | None = None, keep_logs: Callable[[], bool] = lambda: False
) -> Iterator[AirflowCluster]:
    """A started project cluster in a new temporary home; on exit its processes and the endpoints its
    runs deployed are stopped, and the home removed unless ``keep_logs()`` (then its path is printed)."""
    home = Path(tempfile.mkdtemp(prefix="gated-ml-cluster-"))
    cluster = project_cluster(home, db_url, spec_dir, gx_dir)
    try:
        start_project_cluster(cluster)
        yield cluster
    finally:
        cluster.stop()
        _stop_endpoints(lake_of(cluster))
        if keep_logs():
            print(f"\ncluster logs kept in {home}/process-logs and {home}/logs")
        else:
            shutil.rmtree(home, ignore_errors=True)


def spec_copy(folder: Path, pipeline: str = "vertebral_column", name: str | None = None, **sections) -> Path:
    """Write a copy of ``include/pipelines/<pipeline>.yaml`` into ``folder`` (as ``<name>.yaml`` when
    renamed), each of ``sections`` replacing a top-level field (a mapping is merged into the field's
    mapping), e.g. ``spec_copy(d, tuning={"max_jobs": 2}, arrival={"timeout_minutes": 0.5, "poke_seconds": 2})``."""
    spec = yaml.safe_load((SPEC_DIR / f"{pipeline}.yaml").read_text())
    spec["name"] = name or pipeline
    for key, value in sections.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) and isinstance(spec.get(key), dict) else value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@contextmanager
def _settings_of(cluster: AirflowCluster) -> Iterator[None]:
    """This process sees the cluster's ``[gated_ml]`` settings (lake, specs, GX folder) for a while."""
    keys = [k for k in set(os.environ) | set(cluster.env) if k.startswith("AIRFLOW__GATED_ML__")]
    saved = {k: os.environ.get(k) for k in keys}
    try:
        for key in keys:
            if key in cluster.env:
                os.environ[key] = cluster.env[key]
            else:
                os.environ.pop(key)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def land(cluster: AirflowCluster, pipeline: str, ds_from: str, ds_to: str) -> list[str]:
    """Upstream delivers: the replay batches ``ds_from``..``ds_to`` of a pipeline of the cluster land in
    its lake (``gated_ml.replay.land`` with the cluster's lake root and spec folder). The URIs written."""
    from gated_ml import replay
    from gated_ml.spec import load_pipeline
    from gated_ml.targets.local import LocalTarget

    with _settings_of(cluster):
        return replay.land(load_pipeline(pipeline), LocalTarget().environment(), ds_from, ds_to)


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL (scripts/postgres.sh) on a free loopback port with a generated password."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_cluster(postgres, request):
    """Scheduler, dag-processor, triggerer and api-server on ``postgres``, the project's DAGs parsed and
    its set-up done (the endpoint pools).

    The lake is ``lake_of(airflow_cluster)``, empty: tests land the batches their runs need
    (:func:`land`). The cluster's home (process logs, task logs) is kept when a test failed.
    """
    with running_project_cluster(postgres.url, keep_logs=lambda: bool(request.session.testsfailed)) as cluster:
        yield cluster


def _stop_endpoints(lake: Path) -> None:
    from gated_ml.local.control_plane import ControlPlane
    from gated_ml.local.hosting import delete_endpoint

    records = lake / "_control" / "endpoints"
    for record in sorted(records.glob("*.json")) if records.exists() else []:
        delete_endpoint(record.stem, ControlPlane(lake))
