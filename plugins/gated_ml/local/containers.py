"""Start and stop local inference containers (model-server processes) and wait until healthy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import gated_ml
from gated_ml.errors import ContainerError
from gated_ml.lake import local_path
from gated_ml.settings import region

PLUGINS_DIR = Path(gated_ml.__file__).resolve().parents[1]


@dataclass(frozen=True)
class Container:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def ping(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def _spawn(argv: list[str], name: str, log_path: Path, detach: bool, timeout: float, environment: dict[str, str] | None = None) -> Container:
    """Start ``python -m <argv>`` (with ``environment`` added) and wait until it wrote its ready file and answers ``/ping``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ready = log_path.with_suffix(".ready.json")
    ready.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(environment or {}), "PYTHONPATH": str(PLUGINS_DIR)}
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *argv, "--ready-file", str(ready)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ContainerError(f"{name} exited with code {proc.returncode} before it was healthy:\n{tail}")
        if ready.exists():
            c = Container(pid=proc.pid, port=json.loads(ready.read_text())["port"])
            if ping(c.url):
                return c
        time.sleep(0.1)
    proc.kill()
    raise ContainerError(f"{name} was not healthy within {timeout:.0f} seconds; see {log_path}")


def start(
    container_def: dict,
    endpoint_name: str,
    log_path: Path,
    port: int = 0,
    detach: bool = False,
    timeout: float = 120,
    environment: dict[str, str] | None = None,
    variant_name: str = "AllTraffic",
) -> Container:
    """Start a model server for a ``CreateModel`` ``PrimaryContainer`` and wait for ``/ping``.

    The container's ``Environment`` (and a transform job's ``Environment`` over it) is the
    server's process environment, as in the container.
    """
    env_vars = {**container_def.get("Environment", {}), **(environment or {})}
    argv = [
        "gated_ml.local.model_server",
        "--model-data",
        str(local_path(container_def["ModelDataUrl"])),
        "--code",
        str(local_path(env_vars["SAGEMAKER_SUBMIT_DIRECTORY"])),
        "--program",
        env_vars.get("SAGEMAKER_PROGRAM", "inference.py"),
        "--port",
        str(port),
        "--endpoint-name",
        endpoint_name,
        "--variant-name",
        variant_name,
        "--region",
        region(),
    ]
    return _spawn(argv, f"model server for {endpoint_name}", log_path, detach, timeout, env_vars)


def start_router(endpoint_name: str, backend_url: str, log_path: Path, port: int = 0, timeout: float = 30) -> Container:
    """Start an endpoint's router (its stable front port), detached, forwarding to ``backend_url``."""
    argv = ["gated_ml.local.router", "--endpoint-name", endpoint_name, "--backend", backend_url, "--port", str(port)]
    return _spawn(argv, f"router of endpoint {endpoint_name}", log_path, True, timeout)


def switch(router_url: str, backend_url: str) -> None:
    """Point a router at another model server (one atomic assignment in the router)."""
    req = urllib.request.Request(f"{router_url}/_local/backend", data=json.dumps({"backend": backend_url}).encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        if json.loads(r.read())["backend"] != backend_url:
            raise ContainerError(f"router at {router_url} did not switch to {backend_url}")


def stop(pid: int, timeout: float = 10) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return
        except ChildProcessError:  # not our child: poll for its exit
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
