"""The accepted baseline: statistics of one accepted curated batch that later batches are held to.

Outlier fences (quartiles) and drift histograms come from here, never from the batch
under test. The first batch to pass the curated gate becomes the baseline, unless the
spec names one (``gates.baseline_ds``). After that it changes only by
:func:`promote`, an explicit action recorded in ``baseline/history.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging

import numpy as np

from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.spec import PipelineSpec

log = logging.getLogger(__name__)


def compute(spec: PipelineSpec, frame, ds: str) -> dict:
    columns = {}
    for col in spec.numeric_features:
        values = frame[col].dropna().to_numpy(dtype=float)
        q1, q3 = np.quantile(values, [0.25, 0.75])
        edges = np.unique(np.quantile(values, np.linspace(0, 1, spec.gates.drift.bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf  # open tails: a shifted batch still falls in some bin
        weights = np.histogram(values, edges)[0] / len(values)
        columns[col] = {
            "q1": float(q1),
            "q3": float(q3),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "partition": {"bins": [float(e) for e in edges], "weights": [float(w) for w in weights]},
        }
    stats = {"source_ds": ds, "rows": len(frame), "columns": columns}
    if spec.is_classification:
        stats["class_shares"] = {str(k): float(v) for k, v in frame[spec.target.column].value_counts(normalize=True).items()}
    return stats


def _uri(spec, env) -> str:
    return jr.locations(spec, env).baseline() + "stats.json"


def load(spec: PipelineSpec, env) -> dict | None:
    uri = _uri(spec, env)
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def for_batch(spec: PipelineSpec, env, frame, ds: str) -> tuple[dict, bool]:
    """(baseline, proposed): the accepted baseline, or the one this batch would establish."""
    current = load(spec, env)
    if current is not None:
        return current, False
    named = spec.gates.baseline_ds.isoformat() if spec.gates.baseline_ds else None
    if named and named != ds:
        reference = jr.locations(spec, env).curated(named)
        if not batch_commit.is_committed(reference):
            raise FileNotFoundError(f"gates.baseline_ds {named} names a batch with no committed curated data at {reference}; run that date first")
        return compute(spec, batch_commit.read_parquet(reference), named), True
    return compute(spec, frame, ds), True


def _history(spec, env, entry: dict) -> None:
    history = jr.locations(spec, env).baseline() + "history.jsonl"
    previous = storage.read_text(history) if storage.exists(history) else ""
    storage.write(history, previous + json.dumps(entry) + "\n")


def _write(spec, env, stats: dict, action: str, reason: str) -> dict:
    entry = {"at": dt.datetime.now(dt.UTC).isoformat(), "by": getpass.getuser(), "action": action, "source_ds": stats["source_ds"], "reason": reason}
    stats = {**stats, "accepted": entry}
    storage.write(_uri(spec, env), json.dumps(stats, indent=2))
    _history(spec, env, entry)
    log.warning("baseline of %s is now ds=%s (%s by %s: %s)", spec.name, stats["source_ds"], action, entry["by"], reason)
    return stats


def accept(spec: PipelineSpec, env, stats: dict) -> dict:
    """Record the baseline a passing batch proposed (first accepted batch, or the spec's reference).

    Runs of several dates may each propose one: the first to record it wins, the others keep it.
    """
    entry = {"at": dt.datetime.now(dt.UTC).isoformat(), "by": getpass.getuser(), "action": "first accepted batch", "source_ds": stats["source_ds"]}
    if not storage.create(_uri(spec, env), json.dumps({**stats, "accepted": {**entry, "reason": "no baseline existed"}}, indent=2)):
        winner = load(spec, env)
        log.info("baseline of %s: ds=%s was accepted first by another run; it stays", spec.name, winner["source_ds"])
        return winner
    _history(spec, env, {**entry, "reason": "no baseline existed"})
    return load(spec, env)


def promote(spec: PipelineSpec, env, ds: str, reason: str) -> dict:
    """Make the curated batch of ``ds`` the baseline: an explicit, logged action."""
    if not reason.strip():
        raise ValueError("promoting a baseline needs a reason")
    uri = jr.locations(spec, env).curated(ds)
    if not batch_commit.is_committed(uri):
        raise FileNotFoundError(f"no committed curated batch at {uri}: only an accepted batch can become the baseline")
    passed = jr.locations(spec, env).quality(ds) + "curated.json"
    if not storage.exists(passed) or not json.loads(storage.read_text(passed))["success"]:
        raise ValueError(f"ds={ds} did not pass the curated gate; promote a batch that did")
    return _write(spec, env, compute(spec, batch_commit.read_parquet(uri), ds), "promoted", reason)
