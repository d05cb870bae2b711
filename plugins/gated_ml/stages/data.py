"""The data stages: land the raw batch, the Glue ETL and catalog requests, the stratified split.

Raw files are read by their declared format (:func:`read_raw_frame`, the landing gate's
reader); the Glue script does the reading at scale. Every write is under the run's ``ds``.
"""

from __future__ import annotations

import io
import logging

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import StageError
from gated_ml.job_requests import Environment, Run
from gated_ml.quality.suites import SPLITS
from gated_ml.spec import PROJECT_ROOT, PipelineSpec
from gated_ml.steps import Step

log = logging.getLogger(__name__)


# --- landing ------------------------------------------------------------------------
def land(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """Land the spec's bundled source file as the batch of ``ds`` (never overwriting a landed batch)."""
    uri = jr.locations(spec, env).landing(run.ds) + jr.raw_file_name(spec)
    if storage.exists(uri):
        log.info("batch already landed at %s: leaving it untouched", uri)
        return {"raw_uri": uri}
    source = PROJECT_ROOT / spec.source.path
    if not source.is_file():
        raise StageError(f"source file {source} (source.path in include/pipelines/{spec.name}.yaml) does not exist; nothing was landed")
    storage.write(uri, source.read_bytes())
    log.info("landed %s as %s", source, uri)
    return {"raw_uri": uri}


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
def split(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """Stratified train/validation/test split of the curated batch, with a fixed seed.

    train and validation are CSV with a header; test is the batch-transform input:
    ``label,features...`` without a header. Label first in all three.
    """
    from sklearn.model_selection import train_test_split

    loc = jr.locations(spec, env)
    frame = storage.read_parquet(loc.curated(run.ds))
    order = [spec.target.column] + [c.name for c in spec.feature_columns]
    frame = frame[order]
    s = spec.split
    strat = frame[spec.target.column] if spec.is_classification else None
    train, rest = train_test_split(frame, train_size=s.train, random_state=s.seed, stratify=strat)
    rest_strat = rest[spec.target.column] if spec.is_classification else None
    validation, test = train_test_split(rest, train_size=s.validation / (s.validation + s.test), random_state=s.seed, stratify=rest_strat)
    with storage.staged(loc.features(run.ds)) as staging:
        for name, part, header in (("train", train, True), ("validation", validation, True), ("test", test, False)):
            (staging / name).mkdir()
            part.to_csv(staging / name / f"{name}.csv", index=False, header=header)
        # the validation split as batch-transform input too: the decision threshold is chosen on it
        (staging / "validation_batch").mkdir()
        validation.to_csv(staging / "validation_batch" / "validation.csv", index=False, header=False)
    sizes = {"train": len(train), "validation": len(validation), "test": len(test)}
    log.info("split %d rows into %s", len(frame), sizes)
    return sizes


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
