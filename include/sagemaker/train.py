"""SageMaker script-mode training entry point: XGBoost on the train/validation channels.

Contract (script mode under the SageMaker training toolkit, as framework containers run it):
- hyperparameters are read from ``SM_HPS``: the toolkit JSON-decodes each request value and
  hands the script the decoded values as one JSON object (``3`` an int, ``["a", "b"]`` a
  list, ``{}`` a dict). The same values also arrive as ``--name value`` arguments, rendered
  lossily (a list as its Python repr, a dict as ``k=v,...``, an empty dict as ``""``), so the
  arguments are not read;
- channels are folders named by ``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION``, holding
  CSV files with a header line;
- the model goes to ``SM_MODEL_DIR`` (packed by the platform as ``model.tar.gz``);
- final metrics are printed as ``validation:auc=0.93`` lines, found by the request's
  ``MetricDefinitions``; a failure reason is written to ``SM_OUTPUT_DIR/failure`` (the
  toolkit keeps it, and SageMaker reports it as the job's ``FailureReason``).

Only xgboost, numpy and pandas are imported: what the container has.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import traceback
from types import SimpleNamespace

import pandas as pd
import xgboost as xgb

from preprocessing import Preprocessor

PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")
REQUIRED = object()
BOOSTER_PARAMS = {
    "max_depth": int,
    "eta": float,
    "min_child_weight": float,
    "subsample": float,
    "colsample_bytree": float,
    "gamma": float,
    "alpha": float,
    "lambda": float,
    "scale_pos_weight": float,
    "max_bin": int,
}
# name -> (kind, default); the kind is checked against the toolkit's JSON-decoded value
HYPERPARAMETERS = {
    "problem_type": (str, REQUIRED),
    "target": (str, REQUIRED),
    "label_classes": (list, []),
    "categorical": (dict, {}),
    "num_round": (int, 100),
    "early_stopping_rounds": (int, 20),
    "seed": (int, 0),
    **{name: (kind, None) for name, kind in BOOSTER_PARAMS.items()},
}
EXAMPLES = {str: '"text"', int: "3", float: "0.1", list: '["yes", "no"]', dict: '{"column": ["low", "high"]}'}


def _typed(name, value, kind):
    """``value`` as ``kind``, or a ValueError that names the hyperparameter and what to send."""
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise ValueError(
        f"hyperparameter {name} must be a JSON {kind.__name__} (e.g. {EXAMPLES[kind]}); "
        f"the SageMaker training toolkit decoded it as {value!r} ({type(value).__name__})"
    )


def read_hyperparameters(environ):
    """The script's settings from ``SM_HPS`` (the toolkit's decoded hyperparameters), checked and typed."""
    hps = json.loads(environ.get("SM_HPS", "{}"))
    out = {}
    for name, (kind, default) in HYPERPARAMETERS.items():
        if name not in hps or hps[name] is None:
            if default is REQUIRED:
                raise ValueError(f"hyperparameter {name} is required; add it to the training job's HyperParameters")
            out[name] = default
        else:
            out[name] = _typed(name, hps[name], kind)
    if out["problem_type"] not in PROBLEM_TYPES:
        raise ValueError(f"hyperparameter problem_type is {out['problem_type']!r}; use one of {list(PROBLEM_TYPES)}")
    out["label_classes"] = [str(c) for c in out["label_classes"]]
    if out["problem_type"] != "regression" and len(out["label_classes"]) < 2:
        raise ValueError(f"hyperparameter label_classes must list at least two classes for {out['problem_type']}; got {out['label_classes']}")
    for column, categories in out["categorical"].items():
        _typed(f"categorical[{column!r}]", categories, list)
    return out


def parse_args(environ=None):
    environ = os.environ if environ is None else environ
    return SimpleNamespace(
        **read_hyperparameters(environ),
        model_dir=environ.get("SM_MODEL_DIR", "/opt/ml/model"),
        train=environ.get("SM_CHANNEL_TRAIN"),
        validation=environ.get("SM_CHANNEL_VALIDATION"),
    )


def read_channel(path):
    files = sorted(glob.glob(os.path.join(path or "", "*.csv")))
    if not files:
        raise ValueError(f"channel folder {path!r} holds no .csv files")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def encode_labels(series, problem_type, classes):
    if problem_type == "regression":
        return pd.to_numeric(series, errors="raise").to_numpy(dtype=float)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(series.astype(str)) - set(index))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the declared classes {classes}")
    return series.astype(str).map(index).to_numpy(dtype=float)


def booster_params(args, n_classes):
    params = {k: getattr(args, k) for k in BOOSTER_PARAMS if getattr(args, k) is not None}
    params["seed"] = args.seed
    params["nthread"] = int(os.environ.get("SM_NUM_CPUS", "1"))
    if args.problem_type == "binary_classification":
        params.update(objective="binary:logistic", eval_metric=["auc", "error", "logloss"])
    elif args.problem_type == "multiclass_classification":
        params.update(objective="multi:softprob", num_class=n_classes, eval_metric=["merror", "mlogloss"])
    else:
        params.update(objective="reg:squarederror", eval_metric=["mae", "rmse"])
    # early stopping watches the last metric: a smooth loss, not a rank metric that plateaus on small sets
    return params


def train(args):
    classes, categorical = args.label_classes, args.categorical
    train_df, valid_df = read_channel(args.train), read_channel(args.validation)
    if args.target not in train_df.columns:
        raise ValueError(f"hyperparameter target {args.target!r} is not a column of the train channel; its header is {list(train_df.columns)}")
    features = [c for c in train_df.columns if c != args.target]
    numeric = [c for c in features if c not in categorical]
    pre = Preprocessor(numeric=numeric, categorical=categorical).fit(train_df[features])

    dtrain = xgb.DMatrix(pre.transform(train_df), label=encode_labels(train_df[args.target], args.problem_type, classes), feature_names=pre.columns)
    dvalid = xgb.DMatrix(pre.transform(valid_df), label=encode_labels(valid_df[args.target], args.problem_type, classes), feature_names=pre.columns)
    params = booster_params(args, len(classes))
    evals_result = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=args.num_round,
        evals=[(dtrain, "train"), (dvalid, "validation")],
        early_stopping_rounds=args.early_stopping_rounds or None,
        evals_result=evals_result,
        verbose_eval=25,
    )
    best = booster.best_iteration if args.early_stopping_rounds else args.num_round - 1
    for split, metrics in evals_result.items():
        for name, values in metrics.items():
            print(f"{split}:{name}={values[best]:.6f}")

    os.makedirs(args.model_dir, exist_ok=True)
    booster.save_model(os.path.join(args.model_dir, "xgboost-model.json"))
    with open(os.path.join(args.model_dir, "preprocessor.json"), "w") as f:
        f.write(pre.to_json())
    meta = {
        "problem_type": args.problem_type,
        "target": args.target,
        "label_classes": classes,
        "feature_columns": pre.columns,
        "best_iteration": int(best),
        "params": {k: v for k, v in params.items() if k != "nthread"},
    }
    with open(os.path.join(args.model_dir, "model_meta.json"), "w") as f:
        json.dump(meta, f, indent=2)


def main():
    try:
        train(parse_args())
    except Exception as exc:  # noqa: BLE001 (the container contract: every failure is written to SM_OUTPUT_DIR/failure)
        output_dir = os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "failure"), "w") as f:
            f.write(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
