"""The one registry of metric names: what each problem type produces, in training and in evaluation.

Two vocabularies meet in a spec:

- **training metrics**, printed by ``include/sagemaker/train.py`` as ``<split>:<name>=<value>``
  (XGBoost's ``eval_metric`` names: ``auc``, ``logloss``, ``rmse``, ...) and found in the
  log by the training request's ``MetricDefinitions``; the tuning objective is one of these;
- **evaluation metrics**, computed by the evaluation plugin with ``sklearn.metrics`` on the
  test split (``roc_auc``, ``log_loss``, ``macro_f1``, ...); thresholds and the champion
  rule use these.

The mapping between the two (``auc`` is ``roc_auc``) lives here once, as does the direction
of every metric (which are errors, better when lower). A spec naming a metric its problem
type does not produce fails at load time with the list of valid names.
"""

from __future__ import annotations

SPLITS = ("train", "validation")

TRAINING = {  # XGBoost eval_metric names, as train.py sets them per objective
    "binary_classification": ("auc", "logloss", "error"),
    "multiclass_classification": ("mlogloss", "merror"),
    "regression": ("rmse", "mae"),
}

EVALUATION = {  # the scalar metrics of gated_ml.evaluation.metrics, headline order
    "binary_classification": ("roc_auc", "pr_auc", "f1", "accuracy", "sensitivity", "specificity", "precision", "log_loss"),
    "multiclass_classification": ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall"),
    "regression": ("rmse", "mae", "r2", "mse", "within_0_5", "within_1_0"),
}

TRAINING_AS_EVALUATION = {"auc": "roc_auc", "logloss": "log_loss", "mlogloss": "log_loss", "rmse": "rmse", "mae": "mae"}

LOWER_IS_BETTER = frozenset({"log_loss", "mse", "rmse", "mae", "logloss", "mlogloss", "error", "merror"})

DEFAULT_CHAMPION_METRIC = {"binary_classification": "roc_auc", "multiclass_classification": "macro_f1", "regression": "rmse"}


def training_metrics(problem_type: str) -> list[str]:
    """``<split>:<name>`` for every metric the training script reports: the request's ``MetricDefinitions``."""
    return [f"{split}:{name}" for split in SPLITS for name in TRAINING[problem_type]]


def evaluation_metrics(problem_type: str) -> tuple[str, ...]:
    return EVALUATION[problem_type]


def lower_is_better(name: str) -> bool:
    """For a training (``validation:rmse``) or evaluation (``rmse``) metric name."""
    return name.rsplit(":", 1)[-1] in LOWER_IS_BETTER


def check_training_metric(problem_type: str, name: str, where: str) -> None:
    valid = training_metrics(problem_type)
    if name not in valid:
        hint = ""
        base = name.rsplit(":", 1)[-1]
        if base in EVALUATION[problem_type]:
            trained = [t for t, e in TRAINING_AS_EVALUATION.items() if e == base and t in TRAINING[problem_type]]
            hint = f" ({base!r} is an evaluation metric; the training script reports it as {trained})" if trained else f" ({base!r} is an evaluation metric)"
        raise ValueError(f"{where}: {name!r} is not a metric the training script reports for {problem_type}{hint}; use one of {valid}")


def check_evaluation_metric(problem_type: str, name: str, where: str) -> None:
    valid = EVALUATION[problem_type]
    if name not in valid:
        hint = f" (the evaluation name of {name!r} is {TRAINING_AS_EVALUATION[name]!r})" if name in TRAINING_AS_EVALUATION else ""
        raise ValueError(f"{where}: {name!r} is not an evaluation metric of {problem_type}{hint}; use one of {list(valid)}")
