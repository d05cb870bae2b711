"""Evaluation metrics, computed with :mod:`sklearn.metrics`.

Binary labels are encoded 1 for the positive class, 0 otherwise; ``y_score`` is the
model's probability of the positive class. The decision threshold is chosen on the
validation split by :func:`choose_threshold` and only applied to the test split.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from gated_ml.metric_names import LOWER_IS_BETTER


def _check_binary(y_true, y_score):
    y_true = np.asarray(y_true, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-d and the same length, got {y_true.shape} and {y_score.shape}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold 0 (negative) and 1 (positive) only")
    if len(y_true) == 0:
        raise ValueError("no rows to evaluate")
    return y_true, y_score


def binary_metrics(y_true, y_score, threshold: float = 0.5) -> dict:
    y_true, y_score = _check_binary(y_true, y_score)
    y_pred = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    both = len(np.unique(y_true)) == 2
    fpr, tpr, _ = skm.roc_curve(y_true, y_score) if both else ([], [], [])
    precision, recall, _ = skm.precision_recall_curve(y_true, y_score) if both else ([], [], [])
    return {
        "threshold": float(threshold),
        "n": len(y_true),
        "confusion_matrix": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
        "sensitivity": float(skm.recall_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "specificity": float(skm.recall_score(y_true, y_pred, pos_label=0, zero_division=0)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "roc_auc": float(skm.roc_auc_score(y_true, y_score)) if both else None,
        "pr_auc": float(skm.average_precision_score(y_true, y_score)) if both else None,
        "log_loss": float(skm.log_loss(y_true, np.clip(y_score, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "roc_curve": {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr]},
        "pr_curve": {"precision": [float(x) for x in precision], "recall": [float(x) for x in recall]},
    }


def choose_threshold(y_true, y_score, rule: str, value: float | None = None) -> float:
    """The decision threshold by the spec's rule, on validation data.

    ``fixed``: ``value``. ``max_f1``: the score threshold with the best F1.
    ``min_sensitivity``: the highest threshold whose sensitivity reaches ``value``.
    """
    if rule == "fixed":
        return float(value)
    y_true, y_score = _check_binary(y_true, y_score)
    precision, recall, thresholds = skm.precision_recall_curve(y_true, y_score)
    if rule == "max_f1":
        p, r = precision[:-1], recall[:-1]
        f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
        return float(thresholds[int(np.argmax(f1))])
    if rule == "min_sensitivity":
        reaching = thresholds[recall[:-1] >= value]
        if len(reaching) == 0:
            raise ValueError(f"no threshold reaches sensitivity {value} on the validation split")
        return float(reaching.max())
    raise ValueError(f"unknown threshold rule {rule!r}; use fixed, max_f1 or min_sensitivity")


def multiclass_metrics(y_true, y_pred, labels: list[str]) -> dict:
    y_true, y_pred = np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be the same length, got {len(y_true)} and {len(y_pred)}")
    report = skm.classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    return {
        "n": len(y_true),
        "labels": labels,
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "per_class": {c: {k: float(report[c][k]) for k in ("precision", "recall", "f1-score", "support")} for c in labels},
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "macro_precision": float(report["macro avg"]["precision"]),
        "macro_recall": float(report["macro avg"]["recall"]),
        "weighted_f1": float(report["weighted avg"]["f1-score"]),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def regression_metrics(y_true, y_pred) -> dict:
    """MSE, RMSE, MAE, R² and the share of predictions within 0.5 and 1.0 of the truth (Cortez et al.)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be the same length, got {len(y_true)} and {len(y_pred)}")
    err = np.abs(y_true - y_pred)
    mse = skm.mean_squared_error(y_true, y_pred)
    return {
        "n": len(y_true),
        "mse": float(mse),
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
        "within_0_5": float(np.mean(err <= 0.5)),
        "within_1_0": float(np.mean(err <= 1.0)),
    }


def check_thresholds(metrics: dict, thresholds: dict[str, float]) -> list[str]:
    """Reasons the model falls short of the spec's limits (minimums; maximums for errors)."""
    reasons = []
    for name, limit in sorted(thresholds.items()):
        value = metrics.get(name)
        if value is None:
            reasons.append(f"{name} is not available for this model (threshold {limit})")
        elif name in LOWER_IS_BETTER and value > limit:
            reasons.append(f"{name} {value:.4f} is above the maximum {limit}")
        elif name not in LOWER_IS_BETTER and value < limit:
            reasons.append(f"{name} {value:.4f} is below the threshold {limit}")
    return reasons


def compare_with_champion(challenger: dict, champion: dict, metric: str, margin: float) -> list[str]:
    """Reasons the challenger may not replace the champion: worse on ``metric`` by more than ``margin``."""
    new, old = challenger.get(metric), champion.get(metric)
    if new is None or old is None:
        return [f"{metric} is missing for the {'challenger' if new is None else 'champion'}"]
    worse = (new - old) if metric in LOWER_IS_BETTER else (old - new)
    if worse > margin:
        return [f"{metric} {new:.4f} is worse than the champion's {old:.4f} by {worse:.4f}, more than the margin {margin}"]
    return []
