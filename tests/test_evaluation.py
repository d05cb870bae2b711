"""Metrics, threshold rules, the model gate (absolute and champion/challenger) and the registry."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from gated_ml.evaluation import metrics as m
from gated_ml.evaluation import registry, report


def _frame(labels, scores):
    return pd.DataFrame({"label": labels, "prediction": scores})


def _with(spec, **evaluation):
    return spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update=evaluation)})


def test_threshold_is_chosen_on_validation_never_on_test(spec):
    spec = _with(spec, threshold_rule="max_f1", thresholds={})
    # validation: the best F1 is reached by cutting at 0.3; test alone would pick 0.7
    validation = _frame(["Abnormal", "Abnormal", "Normal", "Normal"], [0.35, 0.3, 0.2, 0.1])
    test = _frame(["Abnormal", "Normal", "Abnormal", "Normal"], [0.9, 0.5, 0.7, 0.2])
    result = report.decide(spec, test, validation)
    assert result["threshold"] == pytest.approx(0.3)
    assert result["metrics"]["threshold"] == pytest.approx(0.3)
    assert m.choose_threshold([1, 0, 1, 0], [0.9, 0.5, 0.7, 0.2], "max_f1") == pytest.approx(0.7)
    assert result["metrics"]["confusion_matrix"] == {"tp": 2, "fp": 1, "fn": 0, "tn": 1}  # 0.5 counted positive at 0.3


def test_min_sensitivity_rule_reaches_the_target_on_validation():
    y = np.array([1] * 10 + [0] * 10)
    s = np.linspace(0.05, 0.95, 20)[np.argsort(np.r_[np.arange(10, 20), np.arange(10)])]
    t = m.choose_threshold(y, s, "min_sensitivity", 0.9)
    assert skm.recall_score(y, (s >= t).astype(int)) >= 0.9
    assert skm.recall_score(y, (s >= np.nextafter(t, 1)).astype(int)) < 0.9 or t == s.max()  # the highest such threshold
    with pytest.raises(ValueError, match="unknown threshold rule"):
        m.choose_threshold(y, s, "median")


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    labels = ["unacc", "acc", "good", "vgood"]
    y = rng.choice(labels, 300)
    p = np.where(rng.random(300) < 0.7, y, rng.choice(labels, 300))
    out = m.multiclass_metrics(y, p, labels)
    assert out["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert out["weighted_f1"] == pytest.approx(skm.f1_score(y, p, average="weighted"))
    assert out["per_class"]["good"]["recall"] == pytest.approx(skm.recall_score(y, p, labels=["good"], average="macro"))
    assert np.array_equal(out["confusion_matrix"], skm.confusion_matrix(y, p, labels=labels))


def test_regression_metrics_and_the_cortez_tolerance():
    y = np.array([5, 6, 7, 5, 4], dtype=float)
    p = np.array([5.4, 6.6, 5.9, 5.0, 4.5])
    out = m.regression_metrics(y, p)
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y, p))
    assert out["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert out["r2"] == pytest.approx(skm.r2_score(y, p))
    assert out["within_0_5"] == pytest.approx(3 / 5)  # |err| 0.4, 0.0, 0.5 within 0.5
    assert out["within_1_0"] == pytest.approx(4 / 5)  # 1.1 is not


def test_the_gate_refuses_a_weak_model(spec):
    weak = _frame(["Abnormal", "Normal"] * 10, [0.5] * 20)
    result = report.decide(spec, weak, weak)
    assert result["decision"] == "Rejected"
    assert "roc_auc 0.5000 is below the threshold 0.85" in result["reasons"]


def test_the_gate_refuses_a_model_worse_than_the_champion(spec):
    labels = ["Abnormal"] * 10 + ["Normal"] * 10
    champion = _frame(labels, [0.9] * 10 + [0.1] * 10)  # perfect
    challenger = _frame(labels, [0.9] * 8 + [0.2, 0.3] + [0.1] * 8 + [0.4, 0.35])  # AUC 0.96
    result = report.decide(spec, challenger, challenger, champion, 0.5)
    assert result["decision"] == "Rejected"
    assert result["champion_comparison"]["champion"] == pytest.approx(1.0)
    assert any("worse than the champion's 1.0000 by 0.04" in r and "margin 0.02" in r for r in result["reasons"])
    relaxed = _with(spec, champion_margin=0.05)
    assert report.decide(relaxed, challenger, challenger, champion, 0.5)["decision"] == "Approved"
    assert report.decide(_with(spec, champion_margin=0.05, manual_approval=True), challenger, challenger, champion, 0.5)["decision"] == "PendingManualApproval"


def test_registry_versions_lineage_and_champion(lake, spec, env):
    record = {
        "model_name": "m1",
        "model_data": "s3://b/m1.tar.gz",
        "training_job": "j1",
        "ds": "2026-11-01",
        "decision": "Approved",
        "reasons": [],
        "threshold": 0.5,
        "metrics": {"roc_auc": 0.9},
        "data": {"curated_uri": "s3://b/c/"},
        "code": {"digest": "abc"},
    }
    v1 = registry.register(spec, env, record)
    again = registry.register(spec, env, record)  # a retried task registers the same model once
    v2 = registry.register(spec, env, {**record, "model_name": "m2", "ds": "2026-11-08", "decision": "Rejected", "reasons": ["weak"]})
    assert (v1["version"], again["version"], v2["version"]) == (1, 1, 2)
    assert [v["decision"] for v in registry.versions(spec, env)] == ["Approved", "Rejected"]
    assert registry.champion(spec, env) is None
    registry.crown(spec, env, 1, "epc-1")
    serving = registry.champion(spec, env)
    assert serving["model_name"] == "m1" and serving["data"]["curated_uri"] == "s3://b/c/" and serving["code"]["digest"] == "abc"
    with pytest.raises(ValueError, match="decision 'Maybe'"):
        registry.register(spec, env, {**record, "decision": "Maybe"})
