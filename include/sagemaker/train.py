"""SageMaker script-mode training entry point: XGBoost on the train/validation channels.

Contract (as in the SageMaker XGBoost framework container):
- hyperparameters arrive as ``--name value`` arguments;
- channels are folders named by ``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION``, holding
  CSV files with a header line;
- the model goes to ``SM_MODEL_DIR`` (packed by the platform as ``model.tar.gz``);
- final metrics are printed as ``validation:auc=0.93`` lines, found by the request's
  ``MetricDefinitions``; a failure reason is written to ``/opt/ml/output/failure``.

Only xgboost, numpy and pandas are imported: what the container has.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import traceback

import pandas as pd
import xgboost as xgb

from preprocessing import Preprocessor

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


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--problem_type", required=True, choices=["binary_classification", "multiclass_classification", "regression"])
    p.add_argument("--target", required=True)
    p.add_argument("--label_classes", default="[]", help="JSON list, in encoding order")
    p.add_argument("--categorical", default="{}", help="JSON object: column -> ordered categories")
    p.add_argument("--num_round", type=int, default=100)
    p.add_argument("--early_stopping_rounds", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    for name, kind in BOOSTER_PARAMS.items():
        p.add_argument(f"--{name}", type=kind, default=None)
    p.add_argument("--model-dir", "--model_dir", dest="model_dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    p.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args, _unknown = p.parse_known_args(argv)  # sagemaker_* entries are the platform's
    return args


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
    classes = json.loads(args.label_classes)
    categorical = json.loads(args.categorical)
    train_df, valid_df = read_channel(args.train), read_channel(args.validation)
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


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        train(args)
    except Exception as exc:  # noqa: BLE001 (the container contract: every failure is written to SM_OUTPUT_DIR/failure)
        output_dir = os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "failure"), "w") as f:
            f.write(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
