"""PNG plots of an evaluation, drawn with sklearn's display helpers on matplotlib (Agg)."""

from __future__ import annotations

import io
import tarfile

import numpy as np


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 4))


def confusion_matrix(y_true, y_pred, labels: list[str]) -> bytes:
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = _figure()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=labels, ax=ax, cmap="Blues", colorbar=False)
    ax.set_title("Confusion matrix (test split)")
    return _png(fig)


def roc_curve(y_true, y_score) -> bytes:
    from sklearn.metrics import RocCurveDisplay

    fig, ax = _figure()
    RocCurveDisplay.from_predictions(y_true, y_score, ax=ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_title("ROC curve (test split)")
    return _png(fig)


def pr_curve(y_true, y_score) -> bytes:
    from sklearn.metrics import PrecisionRecallDisplay

    fig, ax = _figure()
    PrecisionRecallDisplay.from_predictions(y_true, y_score, ax=ax)
    ax.set_title("Precision-recall curve (test split)")
    return _png(fig)


def residuals(y_true, y_pred) -> bytes:
    from sklearn.metrics import PredictionErrorDisplay

    fig, ax = _figure()
    PredictionErrorDisplay.from_predictions(np.asarray(y_true, float), np.asarray(y_pred, float), kind="residual_vs_predicted", ax=ax)
    ax.set_title("Residuals (test split)")
    return _png(fig)


def feature_importance(gain: dict[str, float]) -> bytes:
    """A bar chart of total gain per feature (see :func:`feature_importance_values`)."""
    names = sorted(gain, key=gain.get)
    fig, ax = _figure()
    ax.barh(names, [gain[n] for n in names], color="#4c72b0")
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance")
    return _png(fig)


def feature_importance_values(model_tar: bytes) -> dict[str, float]:
    """Total gain per feature, from the XGBoost model (JSON format) inside ``model.tar.gz``."""
    import xgboost as xgb

    with tarfile.open(fileobj=io.BytesIO(model_tar)) as tar:
        raw = tar.extractfile("xgboost-model.json").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return {k: float(v) for k, v in booster.get_score(importance_type="total_gain").items()}
