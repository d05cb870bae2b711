"""Scoring: new rows of ``scoring/ds=<ds>/`` through the approved model, gated on both sides.

The batch is the raw file upstream lands (the source's format, features only; a target
column, if present, is ignored). A scheduled run scores the batch of its own date; a run
triggered by a new approved model (no logical date) scores the newest batch landed at or
before its run time. The batch is gated as landed (``scoring_input``: schema, parseable
numbers, nulls, categories), then against the training baseline (``scoring_drift``: KL
divergence past ``scoring.max_drift_kl``), scored by a batch transform with the
approved version's existing SageMaker model, its predictions gated, and published as
``predictions/ds=<ds>/predictions-v<version>.csv`` (the rows as scored, ``prediction``, and
for classification ``predicted_label``) with ``….model.json`` beside it naming the model.
A refused batch is quarantined by its gate and nothing is published.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import StageError
from gated_ml.job_requests import Environment, Run
from gated_ml.lake import Locations
from gated_ml.naming import date_token
from gated_ml.raw_formats import Column, RawFormat
from gated_ml.spec import PipelineSpec
from gated_ml.steps import Step

log = logging.getLogger(__name__)
_DS = re.compile(r"ds=(\d{4}-\d{2}-\d{2})/")
MISSING = ("", "?")  # read as null, as the ETL reads them


# --- the batch ---------------------------------------------------------------------------
def batch_uri(spec: PipelineSpec, bucket: str, ds: str) -> str:
    """The key of the scoring batch of ``ds``: ``scoring/ds=<ds>/<source file>``."""
    return Locations(bucket=bucket, pipeline=spec.name).scoring(ds) + jr.raw_file_name(spec)


def landed_dates(spec: PipelineSpec, env: Environment) -> list[str]:
    """The ``ds`` of every scoring batch landed, oldest first."""
    zone = jr.locations(spec, env).zone("scoring")
    return sorted({m.group(1) for u in storage.list_uris(zone) if (m := _DS.match(u[len(zone) :])) and u.endswith("/" + jr.raw_file_name(spec))})


def choose_batch(spec: PipelineSpec, env: Environment, run: Run, scheduled: bool) -> dict:
    """The batch this run scores: its own date's (scheduled), else the newest landed at or before the run's time."""
    if scheduled:
        log.info("scheduled run: scoring the batch of its date, ds=%s", run.ds)
        return {"ds": run.ds, "uri": batch_uri(spec, env.bucket, run.ds), "why": "scheduled"}
    earlier = [ds for ds in landed_dates(spec, env) if ds <= run.ds]
    if not earlier:
        zone = jr.locations(spec, env).zone("scoring")
        raise StageError(
            f"no scoring batch has landed under {zone} at or before {run.ds}: nothing for the newly approved model to score; "
            f"land one (or `make replay PIPELINE={spec.name} ZONE=scoring`) and trigger {spec.scoring_dag_id} again"
        )
    log.info("run triggered by a newly approved model: scoring the newest batch landed at or before %s, ds=%s", run.ds, earlier[-1])
    return {"ds": earlier[-1], "uri": batch_uri(spec, env.bucket, earlier[-1]), "why": "asset"}


def at_batch(run: Run, batch: dict) -> Run:
    """The run's try, dated by the batch it scores (the ``ds=`` of its gate results, quarantine and predictions)."""
    return Run(logical_date=dt.datetime.fromisoformat(batch["ds"]).replace(tzinfo=dt.UTC), try_number=run.try_number)


def read_batch(spec: PipelineSpec, data: bytes):
    """The batch's features as strings, trimmed, ``""`` and ``?`` as null (as the ETL reads them).

    The file may carry the target column (dropped) or not; a file that lines up with
    neither keeps the names it has, for the schema check to name.
    """
    full = jr.raw_format(spec)
    frame = full.read_pandas(data)
    if list(frame.columns) != full.names:
        src = spec.source
        frame = RawFormat(src.format, src.delimiter, src.header, tuple(Column(c.name, c.type) for c in spec.feature_columns)).read_pandas(data)
    frame = frame.drop(columns=[spec.target.column], errors="ignore")
    for name in frame.columns:
        frame[name] = frame[name].astype(str).str.strip().mask(lambda v: v.isin(MISSING))
    return frame


def typed(spec: PipelineSpec, frame):
    """A batch that passed ``scoring_input``: its numeric features as floats."""
    import pandas as pd

    return frame.assign(**{name: pd.to_numeric(frame[name]) for name in spec.numeric_features})


def transform_prefixes(spec: PipelineSpec, env: Environment, run: Run, batch: dict) -> tuple[str, str]:
    """(input, output) prefixes of this run's scoring transform, under ``transform/ds=<ds>/scoring-<run>/``."""
    base = jr.locations(spec, env).transform(batch["ds"]) + f"scoring-{date_token(run.logical_date)}/"
    return base + "input/", base + "output/"


# --- the model ---------------------------------------------------------------------------
def approved_model(spec: PipelineSpec, env: Environment, client) -> dict:
    """The approved model (newest Approved package + its version record), or a refusal saying how to get one."""
    from gated_ml.evaluation import registry

    model = registry.approved(spec, env, client)
    if model is None:
        raise StageError(
            f"no approved model for {spec.name}: the model package group {spec.slug} has no Approved version. "
            f"Run the training DAG {spec.dag_id} until its model passes the model gate, or approve a version "
            f"(`make approve PIPELINE={spec.name} VERSION=<n> REASON=...`); then run {spec.scoring_dag_id} again"
        )
    log.info(
        "approved model of %s: version %s (%s), model %s, trained as of ds=%s",
        spec.name,
        model["version"],
        model["model_package_arn"],
        model["model_name"],
        model["ds"],
    )
    return {k: model.get(k) for k in ("version", "model_name", "model_package_arn", "model_package_version", "ds", "threshold")}


# --- the gates -----------------------------------------------------------------------------
def gate_batch(spec: PipelineSpec, env: Environment, run: Run, batch: dict) -> dict:
    """Gate the batch as landed, then its drift from the training baseline; write the gated rows as the transform's input."""
    from gated_ml.quality import baseline, suites
    from gated_ml.stages.gates import run_gate

    stats = baseline.load(spec, env)
    if stats is None:
        raise StageError(f"{spec.name} has no accepted baseline under {jr.locations(spec, env).baseline()}: run the training DAG {spec.dag_id} first")
    dated = at_batch(run, batch)
    landed = read_batch(spec, storage.read_bytes(batch["uri"]))
    summaries = [run_gate(spec, env, dated, "scoring_input", landed, [batch["uri"]]).summary()]
    frame = typed(spec, landed)
    if spec.numeric_features:
        summaries.append(run_gate(spec, env, dated, "scoring_drift", frame, [batch["uri"]], suites.scoring_parameters(spec, stats)).summary())
    else:
        log.info("%s has no numeric feature: no drift to measure (categories were checked by scoring_input)", spec.name)
    input_uri, output_uri = transform_prefixes(spec, env, run, batch)
    storage.write(input_uri + "rows.csv", frame.to_csv(index=False, header=False))
    return {**batch, "rows": len(frame), "input_uri": input_uri, "output_uri": output_uri, "summary": "; ".join(summaries)}


def read_scored(spec: PipelineSpec, output_uris: list[str], threshold: float | None):
    """The transform's output (the rows as sent, then ``prediction``) with ``predicted_label`` for classification."""
    import pandas as pd

    names = [c.name for c in spec.feature_columns] + ["prediction"]
    dtypes = {c.name: str for c in spec.feature_columns if c.type == "string"}
    frames = [pd.read_csv(io.StringIO(storage.read_text(u)), header=None, names=names, dtype={**dtypes, "prediction": str}) for u in output_uris]
    frame = pd.concat(frames, ignore_index=True)
    if spec.problem_type == "binary_classification":
        negative, positive = spec.label_classes
        scores = pd.to_numeric(frame["prediction"], errors="coerce")
        cut = spec.evaluation.decision_threshold if threshold is None else threshold
        frame["prediction"] = scores
        frame["predicted_label"] = scores.ge(cut).map({True: positive, False: negative}).where(scores.notna())
    elif spec.is_classification:
        frame["predicted_label"] = frame["prediction"]
    else:
        frame["prediction"] = pd.to_numeric(frame["prediction"], errors="coerce")
    return frame


def gate_predictions(spec: PipelineSpec, env: Environment, run: Run, batch: dict, scored: dict, model: dict) -> dict:
    """One prediction per gated row, in range."""
    from gated_ml.stages.gates import run_gate

    frame = read_scored(spec, scored["output_uris"], model.get("threshold"))
    result = run_gate(spec, env, at_batch(run, batch), "scoring_predictions", frame, scored["output_uris"], {"expected_rows": batch["rows"]})
    return {"rows": len(frame), "summary": result.summary()}


# --- the transform ---------------------------------------------------------------------------
def score_request(spec: PipelineSpec, env: Environment, run: Run, model: dict, batch: dict) -> dict:
    """The approved version's own SageMaker model over the gated rows (no new CreateModel)."""
    return jr.scoring_transform_job(spec, env, run, model["model_name"], batch["input_uri"], batch["output_uri"] + run.name(spec, jr.SCORE_STAGE) + "/")


def score_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
    from gated_ml.stages.transform import output_uris

    return {"job_name": request["TransformJobName"], "output_uris": output_uris(request)}


SCORE = Step("transform", score_request, score_result)


# --- publishing ------------------------------------------------------------------------------
def publish(spec: PipelineSpec, env: Environment, run: Run, batch: dict, scored: dict, model: dict, scoring_run: str) -> dict:
    """``predictions/ds=<ds>/predictions-v<version>.csv`` and, beside it, ``….model.json`` naming the model and this run."""
    frame = read_scored(spec, scored["output_uris"], model.get("threshold"))
    base = jr.locations(spec, env).predictions(batch["ds"]) + f"predictions-v{model['version']:04d}"
    provenance = {
        "pipeline": spec.name,
        "ds": batch["ds"],
        "batch": batch["uri"],
        "rows": len(frame),
        "model_version": model["version"],
        "model_package_arn": model["model_package_arn"],
        "model_name": model["model_name"],
        "model_trained_ds": model["ds"],
        "decision_threshold": model.get("threshold") if spec.problem_type == "binary_classification" else None,
        "scoring_run": scoring_run,
        "transform_job": scored["job_name"],
        "published_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    storage.write(base + ".model.json", json.dumps(provenance, indent=2, default=str))  # first: a published file always has its model beside it
    storage.write(base + ".csv", frame.to_csv(index=False))
    log.info("published %d predictions of ds=%s by model version %s: %s.csv", len(frame), batch["ds"], model["version"], base)
    return {"predictions_uri": base + ".csv", "model_uri": base + ".model.json", "rows": len(frame)}
