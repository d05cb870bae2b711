"""Benchmark: the curated gate (GX checkpoint) against one vectorised NumPy pass computing the same figures.

Run on demand: ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench_curated_gate.py``;
``BENCH_ROWS=N`` for a smaller table).
Prints, side by side in one run, on a synthetic 1,000,000-row x 12-column table
(11 numeric features and a binary label):
- the curated gate's checkpoint (nulls, box-plot outliers, class balance, unseen labels,
  KL drift from a baseline), warm, best of 3;
- NumPy computing the same figures (null, outlier and class shares, KL divergences);
- the one-off costs a gate task pays: ``import great_expectations`` and the first
  checkpoint in a fresh process (context start-up), each in its own interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins"))

from gated_ml.quality import suites  # noqa: E402
from gated_ml.quality.baseline import compute  # noqa: E402
from gated_ml.quality.checkpoint import run_checkpoint  # noqa: E402
from gated_ml.spec import PipelineSpec  # noqa: E402

# BENCH_ROWS shrinks the table for the smoke run in tests/test_benchmark_smoke.py.
ROWS, FEATURES = int(os.environ.get("BENCH_ROWS", "1000000")), 11


def bench_spec() -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "bench",
            "description": "synthetic",
            "start_date": "2026-01-01",
            "problem_type": "binary_classification",
            "source": {"path": "none.csv", "format": "csv"},
            "columns": [{"name": f"x{i}", "type": "double"} for i in range(FEATURES)] + [{"name": "label", "type": "string"}],
            "target": {"column": "label", "classes": ["a", "b"], "positive_class": "b"},
            "gates": {"max_null_fraction": 0.01},
            "tuning": {"objective_metric": "validation:auc", "objective_type": "Maximize", "ranges": {"eta": {"type": "continuous", "min": 0.01, "max": 0.3}}},
        }
    )


def table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"x{i}": rng.normal(i, 1 + i / 10, ROWS) for i in range(FEATURES)}
    data["x0"][rng.random(ROWS) < 0.001] = np.nan
    data["label"] = np.where(rng.random(ROWS) < 0.3, "b", "a")
    return pd.DataFrame(data)


def numpy_figures(frame: pd.DataFrame, spec: PipelineSpec, base: dict) -> dict:
    """The curated gate's figures, computed directly."""
    out = {}
    n = len(frame)
    for c in spec.columns:
        out[f"{c.name}.null"] = frame[c.name].isna().to_numpy().mean()
    for col, (lo, hi) in suites.numeric_fences(spec, base).items():
        v = frame[col].to_numpy()
        ok = ~np.isnan(v)
        out[f"{col}.outside"] = ((v[ok] < lo) | (v[ok] > hi)).mean()
        part = base["columns"][col]["partition"]
        q = np.histogram(v[ok], np.asarray(part["bins"]))[0] / ok.sum()
        p = np.asarray(part["weights"])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{col}.kl"] = float(np.sum(np.where(p > 0, p * np.log(p / q), 0.0)))
    labels, counts = np.unique(frame["label"].to_numpy(), return_counts=True)
    out["class_shares"] = dict(zip(labels, counts / n, strict=True))
    out["unseen"] = sorted(set(labels) - {"a", "b"})
    return out


def fresh_process_costs() -> tuple[float, float]:
    expectation = "{'type': 'expect_column_values_to_not_be_null', 'kwargs': {'column': 'a'}, 'meta': {'check': 'nulls'}}"
    code = (
        f"import sys, time; sys.path.insert(0, {str(ROOT / 'plugins')!r}); t = time.perf_counter(); import great_expectations; "
        "i = time.perf_counter() - t; import pandas as pd; from gated_ml.quality.checkpoint import run_checkpoint; "
        f"t = time.perf_counter(); run_checkpoint('g', [{expectation}], pd.DataFrame({{'a': [1]}})); "
        "print(i, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    imp, first = out.stdout.split()[-2:]
    return float(imp), float(first)


def main() -> None:
    spec = bench_spec()
    base = compute(spec, table(0), "baseline")
    frame = table(1)
    expectations = suites.materialise(suites.curated(spec), suites.curated_parameters(spec, base))

    run_checkpoint("bench.curated", expectations, frame.head(1000))  # warm the context
    gx_times, np_times = [], []
    for _ in range(3):
        t = time.perf_counter()
        result = run_checkpoint("bench.curated", expectations, frame)
        gx_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        figures = numpy_figures(frame, spec, base)
        np_times.append(time.perf_counter() - t)
    assert result.success, result.message()
    kl_gx = {f.column: f.observed for f in result.findings if f.check == "drift"}
    imp, first = fresh_process_costs()

    gx_best, np_best = min(gx_times), min(np_times)
    print(f"curated gate on {ROWS:,} rows x {FEATURES + 1} columns ({len(expectations)} expectations)")
    print(f"  {'GX checkpoint (warm, best of 3)':<40}{gx_best:8.2f} s")
    print(f"  {'NumPy, same figures (best of 3)':<40}{np_best:8.2f} s")
    print(f"  {'ratio GX / NumPy':<40}{gx_best / np_best:8.2f} x")
    print("one-off costs of a gate task, fresh interpreter:")
    print(f"  {'import great_expectations':<40}{imp:8.2f} s")
    print(f"  {'first checkpoint (context start-up)':<40}{first:8.2f} s")
    print(f"check: x3 KL, GX {kl_gx['x3']} vs NumPy {figures['x3.kl']:.4f}")


if __name__ == "__main__":
    main()
