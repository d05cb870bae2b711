"""Start and stop the emulator process: moto's server app wrapped by :class:`.app.EmulatorApp`, bound to 127.0.0.1.

The job runners share moto's in-memory backends, so they run in this process; Airflow's tasks
and triggerer are other processes and reach it over HTTP only. The process stages job data
in its own lake folder (``--staging``, its ``AIRFLOW__GATED_ML__LAKE_ROOT``), emptied at start
as moto's state is; on exit (SIGTERM) it stops every endpoint's model server it started.

Run as ``python -m gated_ml.emulated_aws.server --staging DIR [--port 0] [--ready-file F]``;
from Python, :func:`start` and :func:`stop`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gated_ml.errors import ContainerError

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Emulator:
    url: str
    pid: int
    staging: Path

    def control(self, path: str, method: str = "GET", payload: dict | None = None) -> dict:
        """Call the emulator's control API (``/_emulator/<path>``)."""
        data = json.dumps(payload).encode() if payload is not None else (b"" if method != "GET" else None)
        req = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def arm_fault(self, action: str, **fault) -> dict:
        return self.control("faults", "POST", {"action": action, **fault})


def serve(staging: Path, port: int, ready_file: Path | None) -> None:
    os.environ["AIRFLOW__GATED_ML__LAKE_ROOT"] = str(staging)  # the local runners' lake is the staging lake
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from gated_ml.emulated_aws import background, endpoints, moto_backends
    from gated_ml.emulated_aws import staging as lake
    from gated_ml.emulated_aws.app import EmulatorApp

    moto_backends.prepare()
    lake.clear(staging)
    server = make_server(HOST, port, EmulatorApp(DomainDispatcherApplication(create_backend_app)), threaded=True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if ready_file:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": server.server_address[1], "pid": os.getpid()}))
        os.replace(tmp, ready_file)
    log.info("AWS emulator (moto %s) on http://%s:%d, staging lake %s", moto_backends.MOTO_VERSION, HOST, server.server_address[1], staging)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        stopped = endpoints.delete_all()
        log.info("stopped the model servers of endpoints %s; jobs still running: %s", stopped, background.running())


def start(staging: Path, log_path: Path, port: int = 0, timeout: float = 60, env: dict | None = None) -> Emulator:
    """Start the emulator process and wait until its API answers; raises :class:`ContainerError` with its log if it does not."""
    from gated_ml.local.containers import PLUGINS_DIR

    log_path.parent.mkdir(parents=True, exist_ok=True)
    ready = log_path.with_suffix(".ready.json")
    ready.unlink(missing_ok=True)
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": str(PLUGINS_DIR)}
    argv = [sys.executable, "-m", "gated_ml.emulated_aws.server", "--staging", str(staging), "--port", str(port), "--ready-file", str(ready)]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(argv, env=child_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ContainerError(f"the AWS emulator exited with code {proc.returncode}:\n{log_path.read_text(errors='replace')[-2000:]}")
        if ready.exists():
            emulator = Emulator(f"http://{HOST}:{json.loads(ready.read_text())['port']}", proc.pid, staging)
            try:
                emulator.control("health")
                return emulator
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise ContainerError(f"the AWS emulator did not answer within {timeout:.0f} seconds; see {log_path}")


def stop(emulator: Emulator, timeout: float = 30) -> None:
    """Stop the emulator (SIGTERM: it stops its endpoints' model servers first)."""
    from gated_ml.local.containers import stop as stop_process

    stop_process(emulator.pid, timeout=timeout)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--staging", type=Path, required=True, help="the staging lake folder (emptied at start)")
    p.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    p.add_argument("--ready-file", type=Path, help="written with the port once the server listens")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    serve(a.staging.resolve(), a.port, a.ready_file)


if __name__ == "__main__":
    main()
