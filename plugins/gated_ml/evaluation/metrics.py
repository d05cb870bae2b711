"""Evaluation metrics, computed with :mod:`sklearn.metrics`.

Binary labels are encoded 1 for the positive class, 0 otherwise; ``y_score`` is the
model's probability of the positive class.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def binary_metrics(y_true, y_score, threshold: float = 0.5) -> dict:
    y_true = np.asarray(y_true, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-d and the same length, got {y_true.shape} and {y_score.shape}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold 0 (negative) and 1 (positive) only")
    y_pred = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    both = len(np.unique(y_true)) == 2
    fpr, tpr, roc_thresholds = skm.roc_curve(y_true, y_score) if both else ([], [], [])
    return {
        "threshold": threshold,
        "n": int(len(y_true)),
        "confusion_matrix": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
        "sensitivity": float(skm.recall_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "specificity": float(skm.recall_score(y_true, y_pred, pos_label=0, zero_division=0)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "roc_auc": float(skm.roc_auc_score(y_true, y_score)) if both else None,
        "roc_curve": {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr]},
    }


def check_thresholds(metrics: dict, thresholds: dict[str, float]) -> list[str]:
    """Reasons the model falls short of the spec's minimums (empty: it passes)."""
    reasons = []
    for name, minimum in sorted(thresholds.items()):
        value = metrics.get(name)
        if value is None:
            reasons.append(f"{name} is not available for this model (threshold {minimum})")
        elif value < minimum:
            reasons.append(f"{name} {value:.4f} is below the threshold {minimum}")
    return reasons
