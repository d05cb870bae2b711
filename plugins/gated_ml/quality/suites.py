"""The expectation suite of every gate, built from the spec.

``suite(spec, gate)`` gives the suite as GX writes it to a file (``name``,
``expectations`` of ``type``/``kwargs``/``meta``/``severity``). Values that depend on
data, not on the spec (outlier fences and histograms from the accepted baseline, the
class shares of the whole batch, the number of test rows) are GX suite parameters,
``{"$PARAMETER": "..."}``, supplied at run time by :func:`parameters`. The files under
``great_expectations/expectations/`` are these suites (``make gx-suites`` writes them).

``meta.check`` names the check a person reads in a message (nulls, outliers, ...);
``severity`` is ``critical`` (stops the pipeline) or ``warning``, from ``gates.severity``.
"""

from __future__ import annotations

import math

from gated_ml.spec import PipelineSpec

# a number, or empty / "?" (missing: counted by the nulls check after ETL, not here)
NUMERIC_REGEX = r"^\s*(?:\?|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?\s*$"
SPLITS = ("train", "validation", "test")
GATES = ("landing", "curated", "splits", "transform_input", "predictions", "scoring_input", "scoring_drift", "scoring_predictions")
_SEVERITY = {"fail": "critical", "warn": "warning"}


def _p(name: str) -> dict:
    return {"$PARAMETER": name}


class _Suite:
    def __init__(self, spec: PipelineSpec):
        self.spec, self.items = spec, []

    def add(self, type_: str, check: str, severity: str | None = None, **kwargs) -> None:
        """One expectation; its severity is the spec's for ``check`` unless ``severity`` (fail | warn) fixes it."""
        severity = _SEVERITY[severity or self.spec.gates.severity_of(check)]
        self.items.append({"type": type_, "kwargs": kwargs, "meta": {"check": check}, "severity": severity})


def _as_landed(spec: PipelineSpec, columns) -> _Suite:
    """A batch as parsed from its file format, every value still a string: the columns in order, a row at least, numbers parseable."""
    s = _Suite(spec)
    s.add("expect_table_columns_to_match_ordered_list", "schema", column_list=[c.name for c in columns])
    s.add("expect_table_row_count_to_be_between", "row_count", min_value=1)
    for c in columns:
        if c.type != "string":
            s.add("expect_column_values_to_match_regex", "parseable", column=c.name, regex=NUMERIC_REGEX, mostly=1.0)
    return s


def landing(spec: PipelineSpec) -> list[dict]:
    """The raw training batch as landed (label included), and its duplicate rows."""
    s = _as_landed(spec, spec.columns)
    s.add("expect_compound_columns_to_be_unique", "duplicates", column_list=[c.name for c in spec.columns], mostly=1.0 - spec.gates.max_duplicate_fraction)
    return s.items


def curated(spec: PipelineSpec) -> list[dict]:
    g = spec.gates
    s = _Suite(spec)
    s.add("expect_table_row_count_to_be_between", "row_count", min_value=1)
    for c in spec.columns:
        s.add("expect_column_values_to_not_be_null", "nulls", column=c.name, mostly=1.0 - g.null_tolerance.get(c.name, g.max_null_fraction))
    for col in spec.numeric_features:
        s.add(
            "expect_column_values_to_be_between",
            "outliers",
            column=col,
            min_value=_p(f"{col}.fence_low"),
            max_value=_p(f"{col}.fence_high"),
            mostly=1.0 - g.max_outlier_fraction,
        )
    if spec.is_classification:
        target = spec.target.column
        s.add("expect_column_distinct_values_to_be_in_set", "class_balance", column=target, value_set=list(spec.target.classes))
        for cls in spec.target.classes:
            s.add("expect_column_values_to_be_in_set", "class_balance", column=target, value_set=[cls], mostly=g.min_class_share)
    for col in spec.numeric_features:
        s.add("expect_column_kl_divergence_to_be_less_than", "drift", column=col, partition_object=_p(f"{col}.partition"), threshold=g.drift.max_kl_divergence)
    return s.items


def splits(spec: PipelineSpec) -> list[dict]:
    """Over the union of the splits with a ``split`` column: sizes, stratification, leakage.

    A share ``x`` of a value is held within ``[x - tol, x + tol]`` by two set expectations:
    the value itself at least ``x - tol``, every other value at least ``1 - x - tol`` (with
    two classes the other class's own lower bound is that second expectation already).
    """
    tol = spec.gates.split_share_tolerance
    s = _Suite(spec)
    s.add("expect_column_distinct_values_to_equal_set", "split_sizes", column="split", value_set=list(SPLITS))
    s.add("expect_compound_columns_to_be_unique", "leakage", column_list=[c.name for c in spec.columns])
    for name in SPLITS:
        share = getattr(spec.split, name)
        others = [x for x in SPLITS if x != name]
        s.add("expect_column_values_to_be_in_set", "split_sizes", column="split", value_set=[name], mostly=round(max(share - tol, 0.0), 6))
        s.add("expect_column_values_to_be_in_set", "split_sizes", column="split", value_set=others, mostly=round(max(1 - share - tol, 0.0), 6))
        if spec.is_classification:
            for cls in spec.target.classes:
                rest = [c for c in spec.target.classes if c != cls]
                where = {"row_condition": f'split=="{name}"', "condition_parser": "pandas"}
                low, rest_low = _p(f"{name}.{cls}.share_low"), _p(f"{name}.{cls}.rest_low")
                s.add("expect_column_values_to_be_in_set", "stratification", column=spec.target.column, value_set=[cls], mostly=low, **where)
                if len(rest) > 1:
                    s.add("expect_column_values_to_be_in_set", "stratification", column=spec.target.column, value_set=rest, mostly=rest_low, **where)
    return s.items


def transform_input(spec: PipelineSpec) -> list[dict]:
    """The batch-transform input (label first, then the features) before the model sees it."""
    s = _Suite(spec)
    s.add("expect_table_columns_to_match_ordered_list", "schema", column_list=[spec.target.column] + [c.name for c in spec.feature_columns])
    s.add("expect_table_row_count_to_be_between", "row_count", min_value=1)
    for c in spec.feature_columns:
        if c.type == "string" and c.categories:
            s.add("expect_column_values_to_be_in_set", "range", column=c.name, value_set=list(c.categories))
        elif c.type != "string":
            s.add("expect_column_values_to_be_in_type_list", "parseable", column=c.name, type_list=["float64", "int64", "Float64", "Int64"])
    return s.items


def _prediction_checks(spec: PipelineSpec) -> _Suite:
    """One prediction per row, each in range (a probability, a known label)."""
    s = _Suite(spec)
    s.add("expect_table_row_count_to_equal", "completeness", value=_p("expected_rows"))
    s.add("expect_column_values_to_not_be_null", "completeness", column="prediction")
    if spec.problem_type == "binary_classification":
        s.add("expect_column_values_to_be_between", "range", column="prediction", min_value=0.0, max_value=1.0)
    if spec.is_classification:
        s.add("expect_column_values_to_be_in_set", "range", column="predicted_label", value_set=list(spec.target.classes))
    return s


def predictions(spec: PipelineSpec) -> list[dict]:
    """Over the joined transform output: ``label``, ``prediction`` (and ``predicted_label``); a test split predicted as one class is refused."""
    s = _prediction_checks(spec)
    if spec.is_classification:
        s.add("expect_column_unique_value_count_to_be_between", "class_balance", column="predicted_label", min_value=2)
    return s.items


def scoring_input(spec: PipelineSpec) -> list[dict]:
    """A scoring batch as landed (features, values as strings, missing as null): schema, parseability, nulls, categories."""
    g = spec.gates
    s = _as_landed(spec, spec.feature_columns)
    for c in spec.feature_columns:
        s.add("expect_column_values_to_not_be_null", "nulls", column=c.name, mostly=1.0 - g.null_tolerance.get(c.name, g.max_null_fraction))
        if c.type == "string" and c.categories:
            s.add("expect_column_values_to_be_in_set", "range", column=c.name, value_set=list(c.categories))
    return s.items


def scoring_drift(spec: PipelineSpec) -> list[dict]:
    """The typed scoring batch against the training baseline: each numeric feature's KL divergence.

    Drift always fails here: a batch drifted past ``scoring.max_drift_kl`` is outside what the
    model was trained on, whatever ``gates.severity`` says for training.
    """
    s = _Suite(spec)
    for col in spec.numeric_features:
        s.add(
            "expect_column_kl_divergence_to_be_less_than",
            "drift",
            severity="fail",
            column=col,
            partition_object=_p(f"{col}.partition"),
            threshold=spec.scoring.max_drift_kl,
        )
    return s.items


def scoring_predictions(spec: PipelineSpec) -> list[dict]:
    """Over the scored rows: one prediction per row, in range (a scoring batch may be all one class)."""
    return _prediction_checks(spec).items


def scoring_parameters(spec: PipelineSpec, baseline: dict) -> dict:
    """The baseline's drift histogram of every numeric feature."""
    return {f"{col}.partition": baseline["columns"][col]["partition"] for col in spec.numeric_features}


def suite(spec: PipelineSpec, gate: str) -> dict:
    """The suite of one gate, as a GX suite file holds it."""
    builders = {
        "landing": landing,
        "curated": curated,
        "splits": splits,
        "transform_input": transform_input,
        "predictions": predictions,
        "scoring_input": scoring_input,
        "scoring_drift": scoring_drift,
        "scoring_predictions": scoring_predictions,
    }
    return {"name": f"{spec.name}.{gate}", "expectations": builders[gate](spec), "meta": {"generated_from": f"include/pipelines/{spec.name}.yaml"}}


def numeric_fences(spec: PipelineSpec, baseline: dict) -> dict[str, tuple[float, float]]:
    """Box-plot fences ``Q1 - k*IQR .. Q3 + k*IQR`` from the accepted baseline."""
    k = spec.gates.iqr_multiplier
    out = {}
    for col in spec.numeric_features:
        q1, q3 = baseline["columns"][col]["q1"], baseline["columns"][col]["q3"]
        out[col] = (q1 - k * (q3 - q1), q3 + k * (q3 - q1))
    return out


def curated_parameters(spec: PipelineSpec, baseline: dict) -> dict:
    params = {}
    for col, (lo, hi) in numeric_fences(spec, baseline).items():
        params[f"{col}.fence_low"], params[f"{col}.fence_high"] = lo, hi
        params[f"{col}.partition"] = baseline["columns"][col]["partition"]
    return params


def splits_parameters(spec: PipelineSpec, class_shares: dict[str, float], split_rows: dict[str, int]) -> dict:
    """Lower bounds of each class's share in each split.

    Rows are split by a hash of the row, not stratified, so a split of ``n`` rows holds a class
    of overall share ``p`` with a binomial standard error ``sqrt(p(1-p)/n)``: the bound is
    ``p - max(split_share_tolerance, stratification_sigmas * that error)``. Small splits are
    held to what chance allows; a split that lost a class still fails.
    """
    g = spec.gates
    params = {}
    for name in SPLITS:
        n = max(split_rows.get(name, 0), 1)
        for cls in spec.target.classes or ():
            share = class_shares.get(cls, 0.0)
            tol = max(g.split_share_tolerance, g.stratification_sigmas * math.sqrt(share * (1 - share) / n))
            params[f"{name}.{cls}.share_low"] = max(share - tol, 0.0)
            params[f"{name}.{cls}.rest_low"] = max(1.0 - share - tol, 0.0)
    return params


def materialise(expectations: list[dict], parameters: dict) -> list[dict]:
    """Put run-time values in place of ``$PARAMETER`` references (GX's renderers choke on some)."""

    def sub(value):
        if isinstance(value, dict):
            if set(value) == {"$PARAMETER"}:
                if value["$PARAMETER"] not in parameters:
                    raise KeyError(f"suite parameter {value['$PARAMETER']!r} has no value")
                return parameters[value["$PARAMETER"]]
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    return [{**e, "kwargs": sub(e["kwargs"])} for e in expectations]
