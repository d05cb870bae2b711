"""A small smoke of each benchmark: the scripts still run end to end and print their ratios.

The figures themselves are not judged here (benchmarks are never timed tests); the backfill
benchmark's smoke lives in tests/test_runs_over_time.py, on that module's scheduler runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_benchmark(script: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins"), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_curated_gate_benchmark_prints_the_ratio_and_agrees_with_numpy():
    out = run_benchmark("bench_curated_gate.py", BENCH_ROWS="5000")
    assert "curated gate on 5,000 rows" in out
    assert "ratio GX / NumPy" in out
    check = out.rsplit("check: x3 KL, GX ", 1)[1]
    gx, numpy = re.findall(r"\d+\.\d+", check)[:2]
    assert float(gx) == pytest.approx(float(numpy), abs=1e-3), out


def test_endpoint_benchmark_prints_every_path_and_the_batch_ratio():
    out = run_benchmark("bench_endpoint.py", BENCH_REQUESTS="20", BENCH_BATCH_ROWS="400")
    for path in ("boto3 -> bare model server", "boto3 -> endpoint (router + server)", "http.client -> endpoint", "threads -> endpoint"):
        assert path in out, out
    assert "run_transform_job" in out, out
