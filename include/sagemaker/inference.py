"""SageMaker inference entry point: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

Takes raw records (the curated feature columns, in the training order, no label) and
applies the preprocessing fitted at training time, so batch transform and the endpoint
see the same inputs as training did.

Output per record: binary -> probability of the positive class; multiclass -> the
predicted label; regression -> the predicted value. JSON responses also carry the
class probabilities for classification.

Served by the SageMaker XGBoost framework container (aws/sagemaker-xgboost-container,
``src/sagemaker_xgboost_container/serving.py``): an exception raised here is answered
``500`` by the container, its message and traceback go to the endpoint's log, and a
runtime client gets ``ModelError`` (424, ``OriginalStatusCode`` 500). ``Accept`` missing
or ``*/*`` reaches ``output_fn`` as ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default
``application/json``): ask for ``text/csv`` to get one line per record.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import xgboost as xgb

from preprocessing import Preprocessor

CSV = "text/csv"
JSON = "application/json"


class InputError(ValueError):
    """The request body cannot be turned into records; the message, in the endpoint's log, says why."""


def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model.json"))
    with open(os.path.join(model_dir, "preprocessor.json")) as f:
        pre = Preprocessor.from_json(f.read())
    with open(os.path.join(model_dir, "model_meta.json")) as f:
        meta = json.load(f)
    return {"booster": booster, "preprocessor": pre, "meta": meta}


def input_fn(request_body, request_content_type):
    """CSV lines or JSON (``{"instances": [...]}`` of lists or of objects) -> records.

    Records are ``{"columns": names or None, "values": 2-d object array}``: plain numpy, no
    DataFrame, because a single-record request spends most of its time in parsing.
    """
    body = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    if not body or not body.strip():
        raise InputError("empty request body")
    kind = (request_content_type or "").split(";")[0].strip().lower()
    if kind == CSV:
        lines = [line for line in body.splitlines() if line.strip()]
        rows = [line.split(",") for line in lines] if '"' not in body else list(csv.reader(lines))
        return _records(None, rows)
    if kind == JSON:
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as e:
            raise InputError(f"body is not valid JSON: {e}") from None
        instances = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(instances, list) or not instances:
            raise InputError('JSON body must be {"instances": [...]} or a non-empty list of records')
        if all(isinstance(r, dict) for r in instances):
            columns = list(dict.fromkeys(k for r in instances for k in r))
            return _records(columns, [[r.get(c) for c in columns] for r in instances])
        if all(isinstance(r, list) for r in instances):
            return _records(None, instances)
        raise InputError("JSON instances must all be lists of values or all be objects")
    raise InputError(f"unsupported content type {request_content_type!r}; use {CSV} or {JSON}")


def _records(columns, rows):
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"records have different numbers of values: {sorted(widths)}")
    values = np.empty((len(rows), widths.pop()), dtype=object)
    values[:] = rows
    return {"columns": columns, "values": values}


def _named(records, columns):
    """Map the records to the training columns: by name for objects, by position otherwise."""
    values = records["values"]
    if records["columns"] is not None:
        missing = [c for c in columns if c not in records["columns"]]
        if missing:
            raise InputError(f"records lack the fields {missing}")
        where = {c: i for i, c in enumerate(records["columns"])}
        return {c: values[:, where[c]] for c in columns}
    if values.shape[1] != len(columns):
        raise InputError(f"records have {values.shape[1]} values, expected {len(columns)}: {columns}")
    return {c: values[:, i] for i, c in enumerate(columns)}


def predict_fn(input_data, model):
    """-> ``{"predictions": [...], "probabilities": [[...]] or None}``, one entry per record."""
    pre, meta = model["preprocessor"], model["meta"]
    try:
        features = pre.transform(_named(input_data, meta["feature_columns"]))
    except ValueError as e:
        raise InputError(str(e)) from None
    raw = model["booster"].inplace_predict(features, iteration_range=(0, meta["best_iteration"] + 1))
    if meta["problem_type"] == "multiclass_classification":
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
