"""The evaluation stage: test-set metrics, plots, the model gate, and the model's registry version.

Reads the batch-transform outputs (test, validation, champion), decides with
:mod:`.report`, draws :mod:`.plots`, registers the model with :mod:`.registry` and writes
``evaluation/ds=…/metrics.json`` beside the PNGs. :class:`~.operator.EvaluateModelOperator`
runs it as the DAG's ``evaluate`` task.
"""

from __future__ import annotations

import json
import logging

from gated_ml import job_requests as jr
from gated_ml import run_params, storage
from gated_ml.errors import ModelGateFailed
from gated_ml.evaluation import plots, registry, report
from gated_ml.evaluation.predictions import read_predictions
from gated_ml.job_requests import Environment, Run
from gated_ml.spec import PipelineSpec

log = logging.getLogger(__name__)


def evaluate(spec: PipelineSpec, env: Environment, run: Run, test: dict, validation: dict, champion: dict | None, model: dict, code: dict) -> dict:
    """Metrics, plots and the model gate; every model is registered with its decision.

    Writes ``evaluation/ds=…/metrics.json`` and PNGs beside it. A rejected model fails the
    task (nothing is deployed); its reasons are in the report and the registry. The model gate
    holds the run's thresholds (its params applied to the spec); the document records the params.
    """
    values = run_params.resolve(spec, run.params, strict=False)
    asked = {"values": values, "overrides": run_params.overrides(spec, values)}  # against the spec's own values
    spec = run_params.apply(spec, values)
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

    data = registry.data_snapshot(spec, env, run.ds)
    entry = registry.register(
        spec,
        env,
        {
            "model_name": model["model_name"],
            "model_data": model["model_data"],
            "training_job": model["job_name"],
            "tuning_job": model.get("tuning_job"),
            "ds": run.ds,
            "decision": result["decision"],
            "reasons": result["reasons"],
            "threshold": result["threshold"],
            "metrics": report.headline(spec, result["metrics"]),
            "data": data,
            "code": {"digest": code["digest"], "sourcedir_uri": code["sourcedir_uri"], "git_commit": registry.git_commit()},
        },
    )
    document = {
        "pipeline": spec.name,
        "ds": run.ds,
        "problem_type": spec.problem_type,
        "model": model,
        "registry_version": entry["version"],
        "thresholds": spec.evaluation.thresholds,
        "params": asked,
        "threshold_rule": spec.evaluation.threshold_rule,
        "feature_importance": importance,
        "plots": sorted(images),
        "window": data["window"],
        **result,
    }
    if spec.problem_type == "binary_classification":
        document["positive_class"] = spec.target.positive_class
    storage.write(out + "metrics.json", json.dumps(document, indent=2, default=str))
    log.info("test-set metrics: %s", json.dumps(report.headline(spec, result["metrics"])))
    log.info("model gate: %s%s", result["decision"], "".join(f"; {r}" for r in result["reasons"]))
    if result["decision"] == "Rejected":
        raise ModelGateFailed("model gate: the model may not be deployed: " + "; ".join(result["reasons"]) + f" (report: {out}metrics.json)")
    return {
        "report_uri": out + "metrics.json",
        "decision": result["decision"],
        "version": entry["version"],
        "threshold": result["threshold"],
        "metrics": report.headline(spec, result["metrics"]),
    }
