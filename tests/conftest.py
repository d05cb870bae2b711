"""Test set-up: an isolated Airflow home (SQLite) and a fresh local lake per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["harness.fixtures"]

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="gated-ml-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__UNIT_TEST_MODE="True",
    AIRFLOW__GATED_ML__LAKE_ROOT=str(_HOME / "lake"),
)
os.environ.pop("AIRFLOW__GATED_ML__TARGET", None)
os.environ.pop("AIRFLOW__GATED_ML__SPEC_DIR", None)
sys.path.insert(0, str(ROOT / "plugins"))


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Path:
    """A fresh, empty local lake for one test."""
    root = tmp_path / "lake"
    monkeypatch.setenv("AIRFLOW__GATED_ML__LAKE_ROOT", str(root))
    yield root
    from gated_ml.local.control_plane import ControlPlane
    from gated_ml.local.hosting import delete_endpoint

    endpoints = root / "_control" / "endpoints"
    for record in endpoints.glob("*.json") if endpoints.exists() else []:
        delete_endpoint(record.stem, ControlPlane(root))


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite in a temporary AIRFLOW_HOME), created once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    yield
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def spec():
    from gated_ml.spec import load_pipeline

    return load_pipeline("vertebral_column")


@pytest.fixture
def env():
    from gated_ml.targets.local import LocalTarget

    return LocalTarget().environment()


@pytest.fixture
def run():
    import datetime as dt

    from gated_ml.job_requests import Run

    return Run(logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC), try_number=1)


def write_spec(folder: Path, text: str, name: str = "vertebral_column") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path
