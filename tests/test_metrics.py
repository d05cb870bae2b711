"""Binary metrics against sklearn and the seed's worked example."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from gated_ml.evaluation.metrics import binary_metrics, check_thresholds


def _labels(tp, fp, fn, tn):
    y_true = np.array([1] * tp + [0] * fp + [1] * fn + [0] * tn)
    y_score = np.array([0.9] * tp + [0.8] * fp + [0.2] * fn + [0.1] * tn)
    return y_true, y_score


def test_seed_worked_example():
    m = binary_metrics(*_labels(107, 23, 69, 42))
    assert m["confusion_matrix"] == {"tp": 107, "fp": 23, "fn": 69, "tn": 42}
    # the seed quotes 4 decimals, truncated: 107/176 = 0.60795..., 42/65 = 0.64615...
    assert math.floor(m["sensitivity"] * 1e4) / 1e4 == 0.6079
    assert math.floor(m["specificity"] * 1e4) / 1e4 == 0.6461


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = binary_metrics(y, s, 0.5)
    p = (s >= 0.5).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    tn, fp, fn, tp = skm.confusion_matrix(y, p).ravel()
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["sensitivity"] == pytest.approx(tp / (tp + fn))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match=r"0 .negative. and 1"):
        binary_metrics([0, 2], [0.1, 0.9])


def test_thresholds():
    assert check_thresholds({"roc_auc": 0.9, "f1": 0.8}, {"roc_auc": 0.85}) == []
    assert check_thresholds({"roc_auc": 0.8}, {"roc_auc": 0.85}) == ["roc_auc 0.8000 is below the threshold 0.85"]
    assert "not available" in check_thresholds({"roc_auc": None}, {"roc_auc": 0.85})[0]
