"""One model's evaluation: metrics for its problem type, the model gate's decision and reasons.

Inputs are batch-transform outputs as frames with ``label`` and ``prediction`` columns:
the test split (what is reported and gated), the validation split (where a binary
decision threshold is chosen, never on the test split) and, when a model serves
already, the champion's predictions on the same test split.
"""

from __future__ import annotations

import numpy as np

from gated_ml.evaluation import metrics as m
from gated_ml.metric_names import evaluation_metrics
from gated_ml.spec import PipelineSpec


def _binary_truth(spec: PipelineSpec, frame) -> np.ndarray:
    return (frame["label"].astype(str) == spec.target.positive_class).astype(int).to_numpy()


def threshold_for(spec: PipelineSpec, validation) -> float:
    e = spec.evaluation
    value = e.decision_threshold if e.threshold_rule == "fixed" else e.min_sensitivity
    if e.threshold_rule == "fixed":
        return m.choose_threshold(None, None, "fixed", value)
    return m.choose_threshold(_binary_truth(spec, validation), validation["prediction"].astype(float).to_numpy(), e.threshold_rule, value)


def metrics_for(spec: PipelineSpec, test, threshold: float | None = None) -> dict:
    if spec.problem_type == "binary_classification":
        return m.binary_metrics(_binary_truth(spec, test), test["prediction"].astype(float).to_numpy(), threshold)
    if spec.problem_type == "multiclass_classification":
        return m.multiclass_metrics(test["label"].astype(str), test["prediction"].astype(str), list(spec.target.classes))
    return m.regression_metrics(test["label"].astype(float), test["prediction"].astype(float))


def decide(spec: PipelineSpec, test, validation=None, champion_test=None, champion_threshold: float | None = None) -> dict:
    """Metrics, and the decision: ``Rejected`` with reasons, ``PendingManualApproval`` or ``Approved``."""
    threshold = threshold_for(spec, validation) if spec.problem_type == "binary_classification" else None
    metrics = metrics_for(spec, test, threshold)
    reasons = m.check_thresholds(metrics, spec.evaluation.thresholds)
    comparison = None
    if champion_test is not None:
        champion_metrics = metrics_for(spec, champion_test, champion_threshold)
        metric = spec.champion_metric
        comparison = {"metric": metric, "challenger": metrics.get(metric), "champion": champion_metrics.get(metric), "margin": spec.evaluation.champion_margin}
        reasons += m.compare_with_champion(metrics, champion_metrics, metric, spec.evaluation.champion_margin)
    if reasons:
        decision = "Rejected"
    elif spec.evaluation.manual_approval:
        decision = "PendingManualApproval"
    else:
        decision = "Approved"
    return {"metrics": metrics, "threshold": threshold, "decision": decision, "reasons": reasons, "champion_comparison": comparison}


def headline(spec: PipelineSpec, metrics: dict) -> dict:
    return {k: metrics[k] for k in evaluation_metrics(spec.problem_type)}
