"""Session-scoped pytest fixtures: one PostgreSQL and one Airflow cluster shared by the tests.

Registered from ``tests/conftest.py`` (``pytest_plugins``). Tests that use ``airflow_cluster``
carry the ``scheduler`` marker. The cluster runs the project's DAGs on the local target
against its own lake (``airflow_cluster.lake``); endpoints the runs deployed are stopped at
the end of the session.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from harness.airflow_cluster import AirflowCluster
from harness.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = tuple(sorted(p.stem for p in (ROOT / "include" / "pipelines").glob("*.yaml")))


def project_cluster(home: Path, db_url: str) -> AirflowCluster:
    """This project's cluster (not started): its dags/ and plugins/, the local target, a lake in ``home/lake``."""
    return AirflowCluster(
        home, db_url, ROOT / "dags", ROOT / "plugins", {"AIRFLOW__GATED_ML__TARGET": "local", "AIRFLOW__GATED_ML__LAKE_ROOT": str(home / "lake")}
    )


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL (scripts/postgres.sh) on a free loopback port with a generated password."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_cluster(postgres, request):
    """Scheduler, dag-processor, triggerer and api-server on ``postgres``, the project's DAGs parsed.

    The lake is ``Path(airflow_cluster.env["AIRFLOW__GATED_ML__LAKE_ROOT"])``. The cluster's
    home (process logs, task logs) is kept when a test failed.
    """
    home = Path(tempfile.mkdtemp(prefix="gated-ml-cluster-"))
    lake = home / "lake"
    cluster = project_cluster(home, postgres.url)
    try:
        cluster.start(dag_ids=PIPELINES)
        yield cluster
    finally:
        cluster.stop()
        _stop_endpoints(lake)
        if request.session.testsfailed:
            print(f"\nairflow_cluster: logs kept in {home}/process-logs and {home}/logs")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _stop_endpoints(lake: Path) -> None:
    from gated_ml.local.control_plane import ControlPlane
    from gated_ml.local.hosting import delete_endpoint

    records = lake / "_control" / "endpoints"
    for record in sorted(records.glob("*.json")) if records.exists() else []:
        delete_endpoint(record.stem, ControlPlane(lake))
