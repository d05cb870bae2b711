"""SageMaker inference entry point: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

Takes raw records (the curated feature columns, in the training order, no label) and
applies the preprocessing fitted at training time, so batch transform and the endpoint
see the same inputs as training did.

Output per record: binary -> probability of the positive class; multiclass -> the
predicted label; regression -> the predicted value. JSON responses also carry the
class probabilities for classification.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import xgboost as xgb

from preprocessing import Preprocessor

CSV = "text/csv"
JSON = "application/json"


class InputError(ValueError):
    """The request body cannot be turned into records (a client error, answered with 4xx)."""


def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model.json"))
    with open(os.path.join(model_dir, "preprocessor.json")) as f:
        pre = Preprocessor.from_json(f.read())
    with open(os.path.join(model_dir, "model_meta.json")) as f:
        meta = json.load(f)
    return {"booster": booster, "preprocessor": pre, "meta": meta}


def input_fn(request_body, request_content_type):
    """CSV lines or JSON (``{"instances": [...]}`` of lists or of objects) -> a DataFrame of records."""
    body = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    if not body or not body.strip():
        raise InputError("empty request body")
    kind = (request_content_type or "").split(";")[0].strip().lower()
    if kind == CSV:
        return pd.read_csv(io.StringIO(body), header=None, dtype=str, keep_default_na=False, skip_blank_lines=True)
    if kind == JSON:
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as e:
            raise InputError(f"body is not valid JSON: {e}") from None
        instances = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(instances, list) or not instances:
            raise InputError('JSON body must be {"instances": [...]} or a non-empty list of records')
        if all(isinstance(r, dict) for r in instances):
            return pd.DataFrame(instances, dtype=object)
        if all(isinstance(r, list) for r in instances):
            widths = {len(r) for r in instances}
            if len(widths) != 1:
                raise InputError(f"records have different numbers of values: {sorted(widths)}")
            return pd.DataFrame(instances, dtype=object)
        raise InputError("JSON instances must all be lists of values or all be objects")
    raise InputError(f"unsupported content type {request_content_type!r}; use {CSV} or {JSON}")


def _named(data, columns):
    """Give positional records the training column names; check named records have them all."""
    if all(isinstance(c, str) for c in data.columns):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise InputError(f"records lack the fields {missing}")
        return data[columns]
    if data.shape[1] != len(columns):
        raise InputError(f"records have {data.shape[1]} values, expected {len(columns)}: {columns}")
    return data.set_axis(columns, axis=1)


def _check_numeric(frame, pre):
    for col in pre.state["numeric"]:
        values = frame[col].replace("", np.nan)
        bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"column {col!r} must be numeric; record {row} has {frame[col].iloc[row]!r}")


def predict_fn(input_data, model):
    """-> ``{"predictions": [...], "probabilities": [[...]] or None}``, one entry per record."""
    pre, meta = model["preprocessor"], model["meta"]
    data = _named(input_data, meta["feature_columns"])
    _check_numeric(data, pre)
    matrix = xgb.DMatrix(pre.transform(data), feature_names=pre.columns)
    raw = model["booster"].predict(matrix, iteration_range=(0, meta["best_iteration"] + 1))
    kind = meta["problem_type"]
    if kind == "multiclass_classification":
        labels = [meta["label_classes"][int(i)] for i in np.argmax(raw, axis=1)]
        return {"predictions": labels, "probabilities": raw.tolist()}
    return {"predictions": [float(v) for v in raw], "probabilities": None}


def output_fn(prediction, accept):
    kind = (accept or CSV).split(";")[0].strip().lower()
    if kind in (CSV, "*/*"):
        return "".join(f"{r}\n" for r in prediction["predictions"]), CSV
    if kind == JSON:
        out = {"predictions": prediction["predictions"]}
        if prediction.get("probabilities") is not None:
            out["probabilities"] = prediction["probabilities"]
        return json.dumps(out), JSON
    raise InputError(f"unsupported accept type {accept!r}; use {CSV} or {JSON}")
