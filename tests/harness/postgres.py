"""A private PostgreSQL cluster for Airflow's metadata DB, run by ``scripts/postgres.sh``.

Owns the cluster's folder, port and password: a fresh random password per server (passed to
the script through the environment, never argv), a free loopback port, and the SQLAlchemy URL
Airflow connects with (``postgresql+psycopg``: psycopg 3 serves both Airflow's sync and async
engines).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from harness.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres.sh"
DRIVER = "postgresql+psycopg"


class PostgresServer:
    """``start()`` a cluster in a new temporary folder; ``stop()`` stops it and removes the folder."""

    def __init__(self, base: Path | None = None, port: int | None = None):
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(24)
        self._own_base = base is None
        self.base = Path(base) if base else None

    @property
    def data_dir(self) -> Path:
        if self.base is None:
            # Not under pytest's tmp (mode 0700): as root, the server runs as the `postgres` OS user.
            self.base = Path(tempfile.mkdtemp(prefix="gated-ml-pg-"))
            self.base.chmod(0o711)
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"{DRIVER}://airflow:{quote(self.password, safe='')}@127.0.0.1:{self.port}/airflow"

    @property
    def log(self) -> Path:
        return self.data_dir / "server.log"

    def _script(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "POSTGRES_PASSWORD": self.password}
        return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)

    def start(self) -> PostgresServer:
        done = self._script("start", str(self.data_dir), str(self.port))
        if done.returncode != 0:
            raise RuntimeError(f"scripts/postgres.sh start failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return self

    def running(self) -> bool:
        return self._script("status", str(self.data_dir)).returncode == 0

    def stop(self, remove: bool = True) -> None:
        done = self._script("stop", str(self.data_dir))
        if done.returncode != 0:
            raise RuntimeError(f"scripts/postgres.sh stop failed:\n{done.stdout}{done.stderr}")
        if remove and self._own_base and self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
