"""The data stages: the batch of a date, the training window, the Glue ETL and catalog requests, the split.

Batches arrive from upstream in ``landing/ds=<ds>/``. Raw files are read by their declared
format (:func:`read_raw_frame`, the landing gate's reader); the Glue script does the reading
at scale. A run trains on the curated batches of its window; every write is under its ``ds``.
"""

from __future__ import annotations

import io
import json
import logging
import re

from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.errors import StageError
from gated_ml.job_requests import Environment, Run
from gated_ml.lake import Locations
from gated_ml.quality.suites import SPLITS
from gated_ml.spec import PipelineSpec
from gated_ml.steps import Step

log = logging.getLogger(__name__)
_DS = re.compile(r"ds=(\d{4}-\d{2}-\d{2})/")


# --- arrivals and the window ------------------------------------------------------
def batch_uri(spec: PipelineSpec, bucket: str, ds: str) -> str:
    """The key of the batch of ``ds`` (a date, or a template such as ``{{ ds }}``): ``landing/ds=<ds>/<source file>``."""
    return Locations(bucket=bucket, pipeline=spec.name).landing(ds) + jr.raw_file_name(spec)


def landed_dates(spec: PipelineSpec, env: Environment) -> list[str]:
    """The ``ds`` of every batch in the landing zone, oldest first."""
    zone = jr.locations(spec, env).zone("landing")
    return sorted({m.group(1) for u in storage.list_uris(zone) if (m := _DS.match(u[len(zone) :]))})


def _verdict(spec: PipelineSpec, env: Environment, ds: str) -> str | None:
    """``passed`` (its curated gate accepted it), ``refused`` (a gate stopped it) or ``None`` (no gate has decided yet)."""
    quality = jr.locations(spec, env).quality(ds)
    for gate in ("curated", "landing"):
        uri = quality + f"{gate}.json"
        if storage.exists(uri):
            record = json.loads(storage.read_text(uri))
            if not record["success"]:
                return "refused"
            if gate == "curated":
                return "passed"
    return None


def window(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """The batches the run of ``ds`` trains on: landed on or before ``ds`` (the last N with ``window.batches: N``).

    A batch a gate refused is left out, with the reason; a batch no gate has decided on yet
    (its run has not reached its curated gate) is ``pending``.
    """
    dates = [d for d in landed_dates(spec, env) if d <= run.ds]
    if spec.window.batches != "all":
        dates = dates[-spec.window.batches :]
    verdicts = {d: _verdict(spec, env, d) for d in dates}
    return {
        "window": spec.window.batches,
        "batches": [d for d in dates if verdicts[d] == "passed"],
        "refused": [d for d in dates if verdicts[d] == "refused"],
        "pending": [d for d in dates if verdicts[d] is None],
    }


def window_settled(spec: PipelineSpec, env: Environment, run: Run) -> bool:
    """True once a gate has decided on every batch of the window (for the sensor before the split)."""
    pending = window(spec, env, run)["pending"]
    if pending:
        log.info("the window of ds=%s waits for the gates of batches %s (their runs have not reached their curated gate)", run.ds, pending)
    return not pending


def baseline_pending(spec: PipelineSpec, env: Environment, run: Run) -> list[str]:
    """The earlier batches the baseline may still come from, while none is accepted.

    The first batch to pass the curated gate becomes the baseline (or the spec's
    ``gates.baseline_ds``). Runs of several dates at once (a backfill) must not let a later
    batch be gated against itself, or become the baseline, because its run reached the gate
    first: the curated gate of ``ds`` waits until no batch landed before ``ds`` (the named one,
    if any) is without a gate decision. Empty once a baseline is accepted.
    """
    if storage.exists(jr.locations(spec, env).baseline() + "stats.json"):
        return []
    named = spec.gates.baseline_ds.isoformat() if spec.gates.baseline_ds else None
    earlier = [d for d in landed_dates(spec, env) if d < run.ds and named in (None, d)]
    return [d for d in earlier if _verdict(spec, env, d) is None]


def baseline_settled(spec: PipelineSpec, env: Environment, run: Run) -> bool:
    """True once the curated gate of ``ds`` is held to the baseline it would have in date order (for the sensor before it)."""
    pending = baseline_pending(spec, env, run)
    if pending:
        log.info("no baseline yet: the curated gate of ds=%s waits for the gates of the earlier batches %s", run.ds, pending)
    return not pending


def read_raw_frame(spec: PipelineSpec, data: bytes):
    """The raw batch parsed by its declared format, all values as strings (for the landing gate)."""
    return jr.raw_format(spec).read_pandas(data)


# --- ETL (glue.CreateJob + glue.StartJobRun) and the catalog partition --------------
def glue_request(spec: PipelineSpec, env: Environment, run: Run, code: dict) -> dict:
    create = jr.glue_create_job(spec, env, code["glue_script_uri"], extra_py_files=[code["raw_formats_uri"]])
    return {"CreateJob": create, "StartJobRun": jr.glue_job_run(spec, env, run)}


def glue_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
    return {"curated_uri": request["StartJobRun"]["Arguments"]["--output_uri"]}


GLUE_ETL = Step("run_glue_job", glue_request, glue_result)


def catalog_request(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """The curated zone as a Glue Data Catalog table, and this run's partition of it."""
    return {"CreateTable": jr.catalog_table(spec, env), "CreatePartition": jr.catalog_partition(spec, env, run)}


def catalog_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
    part = request["CreatePartition"]
    return {"table": f"{part['DatabaseName']}.{part['TableName']}", "partition": part["PartitionInput"]["Values"]}


CATALOG_PARTITION = Step("register_partition", catalog_request, catalog_result)


# --- split --------------------------------------------------------------------------
def assign_splits(spec: PipelineSpec, frame):
    """``train``, ``validation`` or ``test`` for every row, from a stable hash of the row (salted with ``split.seed``).

    A row's split depends on the row alone, never on the rest of the window, so a row keeps
    its split as the window grows: a later model never trains on an earlier model's test row.
    """
    import numpy as np
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame[[c.name for c in spec.columns]], index=False, hash_key=f"{spec.split.seed:016d}"[-16:])
    unit = (hashes.to_numpy(np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    s = spec.split
    return np.where(unit < s.train, "train", np.where(unit < s.train + s.validation, "validation", "test"))


def split(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """The training set of the run's window, split by row hash; recorded in ``features/ds=…/window.json``.

    train and validation are CSV with a header; test is the batch-transform input:
    ``label,features...`` without a header. Label first in all three. Rows repeated across
    batches are kept once.
    """
    import pandas as pd

    loc = jr.locations(spec, env)
    w = window(spec, env, run)
    if w["pending"] or run.ds not in w["batches"]:
        raise StageError(f"the window of ds={run.ds} is not settled: batches {w['pending']} have no gate decision, {w['batches']} passed")
    order = [spec.target.column] + [c.name for c in spec.feature_columns]
    frame = pd.concat([batch_commit.read_parquet(loc.curated(d)) for d in w["batches"]], ignore_index=True)[order]
    frame = frame.drop_duplicates(ignore_index=True)
    where = assign_splits(spec, frame)
    parts = {name: frame[where == name] for name in SPLITS}
    record = {**w, "first_ds": w["batches"][0], "last_ds": w["batches"][-1], "rows": {name: len(part) for name, part in parts.items()}}
    with storage.staged(loc.features(run.ds)) as staging:
        for name, part in parts.items():
            (staging / name).mkdir()
            part.to_csv(staging / name / f"{name}.csv", index=False, header=name != "test")
        # the validation split as batch-transform input too: the decision threshold is chosen on it
        (staging / "validation_batch").mkdir()
        parts["validation"].to_csv(staging / "validation_batch" / "validation.csv", index=False, header=False)
        (staging / "window.json").write_text(json.dumps(record, indent=2))
    log.info(
        "window %s..%s (%d batches, refused %s): %d rows split into %s",
        record["first_ds"],
        record["last_ds"],
        len(w["batches"]),
        w["refused"],
        len(frame),
        record["rows"],
    )
    return record


def read_splits(spec: PipelineSpec, env: Environment, run: Run):
    """The three splits as one frame with a ``split`` column (for the splits gate)."""
    import pandas as pd

    loc = jr.locations(spec, env)
    order = [spec.target.column] + [c.name for c in spec.feature_columns]
    parts = []
    for name in SPLITS:
        body = storage.read_text(loc.features(run.ds, name) + f"{name}.csv")
        part = pd.read_csv(io.StringIO(body), header=None if name == "test" else 0, names=order if name == "test" else None)
        parts.append(part.assign(split=name))
    return pd.concat(parts, ignore_index=True)


def test_records(spec: PipelineSpec, env: Environment, run: Run) -> list[str]:
    """The batch-transform input lines of the test split (``label,features...``)."""
    return [line for line in storage.read_text(jr.locations(spec, env).features(run.ds, "test") + "test.csv").splitlines() if line.strip()]
