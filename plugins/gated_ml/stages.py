"""The body of every pipeline task on the `local` target.

Each function takes the spec, the run (logical date, try number) and the target's
environment, builds its AWS request with :mod:`gated_ml.job_requests`, executes it with
:mod:`gated_ml.local`, checks the outcome and returns only what downstream tasks need
(names, URIs, a few numbers) so XComs stay small.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.job_requests import Environment, Run
from gated_ml.quality import suites
from gated_ml.quality.checkpoint import GateFailed, GateResult, run_checkpoint
from gated_ml.spec import PROJECT_ROOT, PipelineSpec

log = logging.getLogger(__name__)

GLUE_DIR = PROJECT_ROOT / "include" / "glue"
SAGEMAKER_DIR = PROJECT_ROOT / "include" / "sagemaker"


class StageError(RuntimeError):
    """A stage could not produce its output; the message says why."""


class ModelGateFailed(Exception):
    """The model is not good enough to deploy."""


def environment() -> Environment:
    """The environment of the configured target (``[gated_ml] target``)."""
    from gated_ml import settings

    if settings.target() == "aws":
        from gated_ml import aws

        return aws.environment()
    return local_environment()


def local_environment() -> Environment:
    """Account-like values of the `local` target (no real account is involved)."""
    from gated_ml.settings import bucket, region

    from sagemaker.core import image_uris

    return Environment(
        bucket=bucket(),
        role_arn="arn:aws:iam::000000000000:role/gated-ml-local-sagemaker",
        glue_role_arn="arn:aws:iam::000000000000:role/gated-ml-local-glue",
        image_uri=image_uris.retrieve("xgboost", region=region(), version=jr.XGBOOST_FRAMEWORK_VERSION),
    )


# --- code packaging -----------------------------------------------------------------
def _deterministic_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def package_code(spec: PipelineSpec, env: Environment) -> dict:
    """Upload the entry points to ``code/<content hash>/``: the same code always has the same URI."""
    sources = {p.name: p.read_bytes() for p in sorted(SAGEMAKER_DIR.glob("*.py"))}
    glue_script = (GLUE_DIR / "etl.py").read_bytes()
    raw_formats = (PROJECT_ROOT / "plugins" / "gated_ml" / "raw_formats.py").read_bytes()  # the Glue job's --extra-py-files
    digest = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(sources.items())) + glue_script + raw_formats).hexdigest()[:12]
    prefix = jr.locations(spec, env).code(digest)
    sourcedir, script, formats = prefix + "sourcedir.tar.gz", prefix + "etl.py", prefix + "raw_formats.py"
    if not storage.exists(sourcedir):
        storage.write(sourcedir, _deterministic_tar(sources))
    if not storage.exists(script):
        storage.write(script, glue_script)
    if not storage.exists(formats):
        storage.write(formats, raw_formats)
    return {"digest": digest, "sourcedir_uri": sourcedir, "glue_script_uri": script, "raw_formats_uri": formats}


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
    from gated_ml.raw_formats import Column, RawFormat

    src = spec.source
    return RawFormat(src.format, src.delimiter, src.header, tuple(Column(c.name, c.type) for c in spec.columns)).read_pandas(data)


# --- gates --------------------------------------------------------------------------
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
    frame = read_raw_frame(spec, storage.read_bytes(raw_uri))
    result = run_gate(spec, env, run, "landing", frame, [raw_uri])
    return {"rows": len(frame), "summary": result.summary()}


def gate_curated(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    from gated_ml.quality import baseline

    loc = jr.locations(spec, env)
    frame = storage.read_parquet(loc.curated(run.ds))
    stats, proposed = baseline.for_batch(spec, env, frame, run.ds)
    result = run_gate(spec, env, run, "curated", frame, storage.list_uris(loc.curated(run.ds)), suites.curated_parameters(spec, stats))
    if proposed:
        baseline.accept(spec, env, stats)
    return {"rows": len(frame), "summary": result.summary(), "baseline_ds": stats["source_ds"]}


# --- ETL ----------------------------------------------------------------------------
def etl(spec: PipelineSpec, env: Environment, run: Run, glue_script_uri: str) -> dict:
    from gated_ml.local.glue import run_job

    raw_formats_uri = glue_script_uri.rsplit("/", 1)[0] + "/raw_formats.py"  # package_code puts it beside the script
    create, start = jr.glue_create_job(spec, env, glue_script_uri, extra_py_files=[raw_formats_uri]), jr.glue_job_run(spec, env, run)
    run_job(create, start)
    return {"curated_uri": start["Arguments"]["--output_uri"]}


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
    import pandas as pd

    loc = jr.locations(spec, env)
    order = [spec.target.column] + [c.name for c in spec.feature_columns]
    parts = []
    for name in suites.SPLITS:
        body = storage.read_text(loc.features(run.ds, name) + f"{name}.csv")
        part = pd.read_csv(io.StringIO(body), header=None if name == "test" else 0, names=order if name == "test" else None)
        parts.append(part.assign(split=name))
    return pd.concat(parts, ignore_index=True)


def gate_splits(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    loc = jr.locations(spec, env)
    frame = read_splits(spec, env, run)
    shares = {}
    if spec.is_classification:
        shares = {str(k): float(v) for k, v in frame[spec.target.column].value_counts(normalize=True).items()}
    result = run_gate(spec, env, run, "splits", frame, storage.list_uris(loc.features(run.ds)), suites.splits_parameters(spec, shares))
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


# --- training, tuning, model selection ----------------------------------------------
def train(spec: PipelineSpec, env: Environment, run: Run, sourcedir_uri: str) -> dict:
    from gated_ml.local.training import objective_value, run_training_job

    describe = run_training_job(jr.training_job(spec, env, run, sourcedir_uri))
    if describe["TrainingJobStatus"] != "Completed":
        raise StageError(f"training job {describe['TrainingJobName']} {describe['TrainingJobStatus']}: {describe.get('FailureReason')}")
    metric = spec.tuning.objective_metric
    return {
        "job_name": describe["TrainingJobName"],
        "model_data": describe["ModelArtifacts"]["S3ModelArtifacts"],
        "objective": {"name": metric, "value": objective_value(describe, metric)},
        "hyperparameters": {k: v for k, v in describe["HyperParameters"].items() if k in spec.training.hyperparameters},
    }


def tune(spec: PipelineSpec, env: Environment, run: Run, sourcedir_uri: str) -> dict:
    from gated_ml.local.tuning import run_tuning_job

    describe = run_tuning_job(jr.tuning_job(spec, env, run, sourcedir_uri))
    if describe["HyperParameterTuningJobStatus"] != "Completed":
        raise StageError(f"tuning job {describe['HyperParameterTuningJobName']} failed: {describe.get('FailureReason')}")
    best = describe["BestTrainingJob"]
    return {
        "tuning_job": describe["HyperParameterTuningJobName"],
        "job_name": best["TrainingJobName"],
        "model_data": best["ModelArtifacts"]["S3ModelArtifacts"],
        "objective": {"name": spec.tuning.objective_metric, "value": best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]},
        "hyperparameters": best["TunedHyperParameters"],
        "trials": describe["TrainingJobStatusCounters"],
    }


def select_model(spec: PipelineSpec, trained: dict, tuned: dict) -> dict:
    """The better of the default-hyperparameter job and the tuning's best, by the objective metric."""
    sign = 1 if spec.tuning.objective_type == "Maximize" else -1
    candidates = [c for c in (trained, tuned) if c and c["objective"]["value"] is not None]
    if not candidates:
        raise StageError(f"no training job reported {spec.tuning.objective_metric}")
    best = max(candidates, key=lambda c: sign * c["objective"]["value"])
    log.info("selected %s (%s=%.4f)", best["job_name"], best["objective"]["name"], best["objective"]["value"])
    return best


# --- model, batch transform ---------------------------------------------------------
def create_model(spec: PipelineSpec, env: Environment, run: Run, model_data: str, sourcedir_uri: str) -> dict:
    from gated_ml.local.hosting import create_model as create

    record = create(jr.model(spec, env, run, model_data, sourcedir_uri))
    return {"model_name": record["ModelName"]}


def batch_transform(spec: PipelineSpec, env: Environment, run: Run, model_name: str, purpose: str = "test") -> dict:
    from gated_ml.local.control_plane import ControlPlane
    from gated_ml.local.transform import run_transform_job

    control = ControlPlane()
    describe = run_transform_job(jr.transform_job(spec, env, run, model_name, purpose), control.get("models", model_name), control)
    return {"job_name": describe["TransformJobName"], "output_uris": describe["OutputFiles"]}


def champion_transform(spec: PipelineSpec, env: Environment, run: Run, model_name: str) -> dict | None:
    """The serving model's predictions on this run's test split, for the champion/challenger rule."""
    from gated_ml.evaluation import registry

    champ = registry.champion(spec, env)
    if champ is None or champ["model_name"] == model_name:
        log.info("no other model serves %s: nothing to compare with", spec.name)
        return None
    out = batch_transform(spec, env, run, champ["model_name"], "champion")
    return {**out, "version": champ["version"], "threshold": champ.get("threshold"), "model_name": champ["model_name"]}


def read_predictions(spec: PipelineSpec, output_uris: list[str]):
    """Transform output ``label,prediction`` as a frame; for classification also ``predicted_label``."""
    import pandas as pd

    frames = [pd.read_csv(io.StringIO(storage.read_text(u)), header=None, names=["label", "prediction"], dtype={"label": str}) for u in output_uris]
    frame = pd.concat(frames, ignore_index=True)
    if spec.problem_type == "binary_classification":
        negative, positive = spec.label_classes
        scores = pd.to_numeric(frame["prediction"], errors="coerce")
        frame["predicted_label"] = scores.ge(spec.evaluation.decision_threshold).map({True: positive, False: negative}).where(scores.notna())
    elif spec.is_classification:
        frame["predicted_label"] = frame["prediction"]
    return frame


def test_records(spec: PipelineSpec, env: Environment, run: Run) -> list[str]:
    """The batch-transform input lines of the test split (``label,features...``)."""
    return [line for line in storage.read_text(jr.locations(spec, env).features(run.ds, "test") + "test.csv").splitlines() if line.strip()]


def gate_predictions(spec: PipelineSpec, env: Environment, run: Run, output_uris: list[str]) -> dict:
    expected = len(test_records(spec, env, run))
    frame = read_predictions(spec, output_uris)
    result = run_gate(spec, env, run, "predictions", frame, output_uris, {"expected_rows": expected})
    return {"rows": len(frame), "summary": result.summary()}


# --- evaluation ---------------------------------------------------------------------
def evaluate(spec: PipelineSpec, env: Environment, run: Run, test: dict, validation: dict, champion: dict | None, model: dict, code: dict) -> dict:
    """Metrics, plots and the model gate; every model is registered with its decision.

    Writes ``evaluation/ds=…/metrics.json`` and PNGs beside it. A rejected model fails the
    task (nothing is deployed); its reasons are in the report and the registry.
    """
    from gated_ml.evaluation import plots, registry, report

    loc = jr.locations(spec, env)
    frame = read_predictions(spec, test["output_uris"])
    val = read_predictions(spec, validation["output_uris"])
    champ = read_predictions(spec, champion["output_uris"]) if champion else None
    result = report.decide(spec, frame, val, champ, champion.get("threshold") if champion else None)

    out = loc.evaluation(run.ds)
    model_tar = storage.read_bytes(model["model_data"])
    importance = plots.feature_importance_values(model_tar)
    images = {"feature_importance.png": plots.feature_importance(importance)}
    if spec.is_classification:
        if spec.problem_type == "binary_classification":
            negative, positive = spec.label_classes
            predicted = frame["prediction"].astype(float).ge(result["threshold"]).map({True: positive, False: negative})
            truth = (frame["label"].astype(str) == positive).astype(int)
            images["roc_curve.png"] = plots.roc_curve(truth, frame["prediction"].astype(float))
            images["pr_curve.png"] = plots.pr_curve(truth, frame["prediction"].astype(float))
        else:
            predicted = frame["prediction"].astype(str)
        images["confusion_matrix.png"] = plots.confusion_matrix(frame["label"].astype(str), predicted, list(spec.target.classes))
    else:
        images["residuals.png"] = plots.residuals(frame["label"], frame["prediction"])
    for name, png in images.items():
        storage.write(out + name, png)

    entry = registry.register(spec, env, {
        "model_name": model["model_name"],
        "model_data": model["model_data"],
        "training_job": model["job_name"],
        "tuning_job": model.get("tuning_job"),
        "ds": run.ds,
        "decision": result["decision"],
        "reasons": result["reasons"],
        "threshold": result["threshold"],
        "metrics": report.headline(spec, result["metrics"]),
        "data": registry.data_snapshot(spec, env, run.ds),
        "code": {"digest": code["digest"], "sourcedir_uri": code["sourcedir_uri"], "git_commit": registry.git_commit()},
    })
    document = {
        "pipeline": spec.name, "ds": run.ds, "problem_type": spec.problem_type, "model": model,
        "registry_version": entry["version"], "thresholds": spec.evaluation.thresholds,
        "threshold_rule": spec.evaluation.threshold_rule, "feature_importance": importance,
        "plots": sorted(images), **result,
    }
    if spec.problem_type == "binary_classification":
        document["positive_class"] = spec.target.positive_class
    storage.write(out + "metrics.json", json.dumps(document, indent=2, default=str))
    log.info("test-set metrics: %s", json.dumps(report.headline(spec, result["metrics"])))
    log.info("model gate: %s%s", result["decision"], "".join(f"; {r}" for r in result["reasons"]))
    if result["decision"] == "Rejected":
        raise ModelGateFailed("model gate: the model may not be deployed: " + "; ".join(result["reasons"]) + f" (report: {out}metrics.json)")
    return {"report_uri": out + "metrics.json", "decision": result["decision"], "version": entry["version"],
            "threshold": result["threshold"], "metrics": report.headline(spec, result["metrics"])}


# --- deployment ---------------------------------------------------------------------
class SkipDeployment(Exception):
    """This run's model is not to be deployed (pending approval, or a newer model serves)."""


def check_deployable(spec: PipelineSpec, env: Environment, run: Run, evaluation: dict) -> None:
    """Raise :class:`SkipDeployment` unless this run's model is approved and no newer model serves."""
    from gated_ml.evaluation import registry

    if evaluation["decision"] != "Approved":
        raise SkipDeployment(f"model version {evaluation['version']} is {evaluation['decision']}: not deployed")
    champ = registry.champion(spec, env)
    if champ is not None and champ["ds"] > run.ds:
        raise SkipDeployment(f"a newer model (version {champ['version']}, ds={champ['ds']}) serves: a backfill of ds={run.ds} never replaces it")


def deploy(spec: PipelineSpec, env: Environment, run: Run, model_name: str, evaluation: dict, test: dict) -> dict:
    """Create or update the endpoint to this run's model; the old model serves until the new one is proven."""
    from gated_ml.evaluation import registry
    from gated_ml.local import hosting

    check_deployable(spec, env, run, evaluation)
    config = hosting.create_endpoint_config(jr.endpoint_config(spec, run, model_name))
    record = hosting.create_or_update_endpoint(
        jr.endpoint(spec, config["EndpointConfigName"]),
        verify=lambda url: check_agreement(spec, env, run, runtime_client(url), test["output_uris"]),
    )
    registry.crown(spec, env, evaluation["version"], config["EndpointConfigName"])
    return {"endpoint_name": record["EndpointName"], "endpoint_config": record["EndpointConfigName"], "url": record["Url"], "version": evaluation["version"]}


def runtime_client(url: str, max_attempts: int = 3):
    """A stock boto3 ``sagemaker-runtime`` client pointed at a local endpoint (``max_attempts=1``: no retries)."""
    import boto3
    from botocore.config import Config

    from gated_ml.settings import region

    return boto3.client(
        "sagemaker-runtime", endpoint_url=url, region_name=region(),
        aws_access_key_id="local", aws_secret_access_key="local",  # loopback only: the server ignores signatures
        config=Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}),
    )


def check_agreement(spec: PipelineSpec, env: Environment, run: Run, client, output_uris: list[str]) -> int:
    """Invoke the endpoint through a boto3 ``sagemaker-runtime`` client with test rows; the answers must equal batch transform's."""
    import numpy as np

    n = spec.endpoint.smoke_test_rows
    test_lines = test_records(spec, env, run)[:n]
    body = "".join(line.split(",", 1)[1] + "\n" for line in test_lines)  # drop the label, as InputFilter $[1:] does
    response = client.invoke_endpoint(EndpointName=jr.endpoint_name(spec), ContentType="text/csv", Accept="text/csv", Body=body.encode())
    answers = [l for l in response["Body"].read().decode().splitlines() if l.strip()]
    expected = read_predictions(spec, output_uris)["prediction"].tolist()[: len(test_lines)]
    if len(answers) != len(test_lines):
        raise StageError(f"smoke test: the endpoint answered {len(answers)} predictions for {len(test_lines)} rows")
    if spec.problem_type == "multiclass_classification":
        agree = [a == str(e) for a, e in zip(answers, expected)]
    else:
        agree = list(np.isclose([float(a) for a in answers], [float(e) for e in expected], rtol=1e-6, atol=1e-6))
    if not all(agree):
        bad = [i for i, ok in enumerate(agree) if not ok]
        raise StageError(f"smoke test: endpoint and batch transform disagree on test rows {bad}: {[answers[i] for i in bad]} vs {[expected[i] for i in bad]}")
    return len(answers)


def smoke_test(spec: PipelineSpec, env: Environment, run: Run, endpoint: dict, output_uris: list[str]) -> dict:
    """The deployed endpoint, through its public URL, agrees with batch transform."""
    from gated_ml import settings

    if settings.target() == "aws":
        from gated_ml import aws

        client = aws.runtime_client()
    else:
        client = runtime_client(endpoint["url"])
    rows = check_agreement(spec, env, run, client, output_uris)
    log.info("smoke test: %d rows, endpoint %s agrees with batch transform", rows, endpoint["endpoint_name"])
    return {"rows": rows, "agree": True}
