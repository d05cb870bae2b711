"""The gates: a GX checkpoint over the data each stage is about to consume or has just produced.

Each gate reads its batch, fills the suite file's run-time parameters (baseline fences,
class shares, expected row counts) and runs the checkpoint. The result and its Data Docs
are saved under ``quality/ds=…/``; a failed gate copies the batch to
``quarantine/ds=…/<gate>/`` with the reason and raises :class:`~gated_ml.errors.GateFailed`
naming the check, the column, the figure and the threshold.
"""

from __future__ import annotations

import io
import json
import logging

from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.errors import GateFailed
from gated_ml.evaluation.predictions import read_predictions
from gated_ml.job_requests import Environment, Run
from gated_ml.quality import suites
from gated_ml.quality.checkpoint import GateResult, run_checkpoint
from gated_ml.spec import PipelineSpec
from gated_ml.stages.data import read_raw_frame, read_splits, test_records

log = logging.getLogger(__name__)


def run_gate(spec: PipelineSpec, env: Environment, run: Run, gate: str, frame, batch_uris: list[str], parameters: dict | None = None) -> GateResult:
    """Validate ``frame`` with the gate's suite; save the result and Data Docs under ``quality/``.

    On failure the batch is copied (never moved: the landing zone is never modified) to
    ``quarantine/ds=…/<gate>/`` with the reason, and :class:`GateFailed` is raised.
    """
    from gated_ml.quality import suite_files

    loc = jr.locations(spec, env)
    expectations = suites.materialise(suite_files.load(spec, gate), parameters or {})
    docs_prefix = loc.quality(run.ds) + f"data_docs/{gate}/"
    with storage.staged(docs_prefix) as docs_dir:
        result = run_checkpoint(f"{spec.name}.{gate}", expectations, frame, docs_dir=docs_dir)
    docs = docs_prefix + "index.html"
    record = {
        "gate": gate,
        "ds": run.ds,
        "try_number": run.try_number,
        "success": result.success,
        "summary": result.summary(),
        "findings": [f.__dict__ for f in result.findings],
        "data_docs": docs,
        "validation_result": result.result_json,
    }
    storage.write(loc.quality(run.ds) + f"{gate}.json", json.dumps(record, indent=2, default=str))
    for f in result.warnings:
        log.warning("gate %s: WARN %s", gate, f.line())
    if not result.success:
        quarantine = loc.quarantine(run.ds) + f"{gate}/"
        for uri in batch_uris:
            storage.copy(uri, quarantine + uri.rsplit("/", 1)[-1])
        storage.write(quarantine + "reason.json", json.dumps({k: v for k, v in record.items() if k != "validation_result"}, indent=2, default=str))
        log.error(result.summary())
        raise GateFailed(result.message() + f"\nbatch quarantined under {quarantine}; Data Docs: {docs}")
    log.info(result.summary())
    return result


def gate_landing(spec: PipelineSpec, env: Environment, run: Run, raw_uri: str) -> dict:
    """Schema, parseability, row count and duplicates of the raw batch as landed."""
    frame = read_raw_frame(spec, storage.read_bytes(raw_uri))
    result = run_gate(spec, env, run, "landing", frame, [raw_uri])
    return {"rows": len(frame), "summary": result.summary()}


def gate_curated(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """Nulls, outliers against the baseline's fences, class balance and drift of the curated batch."""
    from gated_ml.quality import baseline

    loc = jr.locations(spec, env)
    frame = batch_commit.read_parquet(loc.curated(run.ds))
    stats, proposed = baseline.for_batch(spec, env, frame, run.ds)
    result = run_gate(spec, env, run, "curated", frame, batch_commit.committed_files(loc.curated(run.ds)), suites.curated_parameters(spec, stats))
    if proposed:
        baseline.accept(spec, env, stats)
    return {"rows": len(frame), "summary": result.summary(), "baseline_ds": stats["source_ds"]}


def gate_splits(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """Split sizes, stratification and leakage between the splits."""
    loc = jr.locations(spec, env)
    frame = read_splits(spec, env, run)
    shares = {}
    if spec.is_classification:
        shares = {str(k): float(v) for k, v in frame[spec.target.column].value_counts(normalize=True).items()}
    sizes = {str(k): int(v) for k, v in frame["split"].value_counts().items()}
    result = run_gate(spec, env, run, "splits", frame, storage.list_uris(loc.features(run.ds)), suites.splits_parameters(spec, shares, sizes))
    return {"rows": len(frame), "summary": result.summary()}


def gate_transform_input(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """The test split as batch transform will send it: the training schema, values the model can take."""
    import pandas as pd

    uri = jr.locations(spec, env).features(run.ds, "test") + "test.csv"
    order = [spec.target.column] + [c.name for c in spec.feature_columns]
    body = storage.read_text(uri)
    frame = pd.read_csv(io.StringIO(body), header=None) if body.strip() else pd.DataFrame()
    if frame.shape[1] == len(order):
        frame.columns = order
    else:
        frame.columns = [f"field_{i + 1}" for i in range(frame.shape[1])]
    result = run_gate(spec, env, run, "transform_input", frame, [uri])
    return {"rows": len(frame), "summary": result.summary()}


def gate_predictions(spec: PipelineSpec, env: Environment, run: Run, output_uris: list[str]) -> dict:
    """Every test row has a prediction in range, and the predictions are not all one class."""
    expected = len(test_records(spec, env, run))
    frame = read_predictions(spec, output_uris)
    result = run_gate(spec, env, run, "predictions", frame, output_uris, {"expected_rows": expected})
    return {"rows": len(frame), "summary": result.summary()}
