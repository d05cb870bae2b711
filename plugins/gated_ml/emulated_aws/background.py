"""Jobs the emulator runs beside the API: one thread each, a failure recorded on the job, stops honoured.

A job's status is set by its runner *last*, after its outputs are in moto's S3, so a client
that sees ``Completed`` finds everything the job wrote. ``Stop*`` calls mark a job
(:func:`request_stop`) and end the processes it started; the runner then ends it ``Stopped``
instead of ``Failed`` (:func:`ended`).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

log = logging.getLogger(__name__)
_stops: set[str] = set()
_lock = threading.Lock()
_running: dict[str, threading.Thread] = {}


def start(name: str, work: Callable[[], None], fail: Callable[[str], None]) -> threading.Thread:
    """Run ``work`` in a thread; an exception becomes ``fail(reason)`` (the job's ``FailureReason``)."""

    def body():
        try:
            work()
        except Exception as e:
            log.exception("%s failed", name)
            fail(f"{type(e).__name__}: {e}")
        finally:
            with _lock:
                _running.pop(name, None)

    thread = threading.Thread(target=body, name=f"job {name}", daemon=True)
    with _lock:
        _running[name] = thread
    thread.start()
    return thread


def running() -> list[str]:
    with _lock:
        return sorted(_running)


def wait_all(timeout: float) -> None:
    """Wait for the running jobs (the emulator's shutdown)."""
    with _lock:
        threads = list(_running.values())
    for t in threads:
        t.join(timeout)


def request_stop(name: str, work_dirs: list[Path]) -> int:
    """Mark ``name`` stopped and terminate the processes it started; returns how many.

    A job's processes are those working in one of ``work_dirs`` (a training script runs in
    its job's ``/opt/ml/code``) or started for it by name (a transform job's model server
    is started with ``--endpoint-name <job>``).
    """
    with _lock:
        _stops.add(name)
    killed = 0
    roots = [d.resolve() for d in work_dirs]
    for proc in psutil.Process().children(recursive=True):
        try:
            cwd, argv = Path(proc.cwd()).resolve(), proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        started_for = any(a == "--endpoint-name" and b == name for a, b in itertools.pairwise(argv))
        if started_for or any(cwd == r or r in cwd.parents for r in roots):
            proc.terminate()
            killed += 1
    return killed


def stop_requested(name: str) -> bool:
    with _lock:
        return name in _stops


def ended(name: str, status: str) -> str:
    """The status a job ends with: ``Stopped`` when a stop was asked for, whatever its processes did on being ended."""
    return "Stopped" if stop_requested(name) and status != "Completed" else status
