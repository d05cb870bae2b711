"""The expectations of every gate, as GX expectation configurations built from the spec.

Pure functions: ``(spec, baseline) -> [{"type", "kwargs", "meta", "severity"}]``, the
same shape as a GX suite file. ``meta.check`` names the check a person reads in a
failure message (nulls, outliers, class_balance, ...). Severity ``critical`` stops the
pipeline; ``warning`` is recorded and shown.
"""

from __future__ import annotations

from gated_ml.spec import PipelineSpec

NUMERIC_REGEX = r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$"
SPLITS = ("train", "validation", "test")


def _e(type_: str, check: str, severity: str = "critical", **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"check": check}, "severity": severity}


def landing_suite(spec: PipelineSpec) -> list[dict]:
    """The raw batch as parsed from its file format, every value still a string."""
    out = [
        _e("expect_table_columns_to_match_ordered_list", "schema", column_list=[c.name for c in spec.columns]),
        _e("expect_table_row_count_to_be_between", "row_count", min_value=1),
    ]
    for c in spec.columns:
        if c.type != "string":
            out.append(_e("expect_column_values_to_match_regex", "parseable", column=c.name, regex=NUMERIC_REGEX))
    return out


def numeric_fences(spec: PipelineSpec, baseline: dict) -> dict[str, tuple[float, float]]:
    """Box-plot fences ``Q1 - k*IQR .. Q3 + k*IQR`` from the accepted baseline."""
    k = spec.gates.iqr_multiplier
    fences = {}
    for col in spec.numeric_features:
        q1, q3 = baseline["columns"][col]["q1"], baseline["columns"][col]["q3"]
        iqr = q3 - q1
        fences[col] = (q1 - k * iqr, q3 + k * iqr)
    return fences


def curated_suite(spec: PipelineSpec, baseline: dict) -> list[dict]:
    g = spec.gates
    out = [_e("expect_table_row_count_to_be_between", "row_count", min_value=1)]
    for c in spec.columns:
        out.append(_e("expect_column_values_to_not_be_null", "nulls", column=c.name, mostly=1.0 - g.max_null_fraction))
    for col, (lo, hi) in numeric_fences(spec, baseline).items():
        out.append(_e("expect_column_values_to_be_between", "outliers", column=col, min_value=lo, max_value=hi, mostly=1.0 - g.max_outlier_fraction))
    if spec.is_classification:
        target = spec.target.column
        out.append(_e("expect_column_distinct_values_to_be_in_set", "class_balance", column=target, value_set=list(spec.target.classes)))
        for cls in spec.target.classes:
            out.append(_e("expect_column_values_to_be_in_set", "class_balance", column=target, value_set=[cls], mostly=g.min_class_share))
    out.append(_e("expect_compound_columns_to_be_unique", "duplicates", column_list=[c.name for c in spec.columns], mostly=1.0 - g.max_duplicate_fraction))
    return out


def splits_suite(spec: PipelineSpec, class_shares: dict[str, float]) -> list[dict]:
    """Over the union of the splits with a ``split`` column: sizes, stratification, leakage."""
    g, s = spec.gates, spec.split
    tol = g.split_share_tolerance
    out = [
        _e("expect_column_distinct_values_to_equal_set", "split_sizes", column="split", value_set=list(SPLITS)),
        _e("expect_compound_columns_to_be_unique", "leakage", column_list=[c.name for c in spec.columns]),
    ]
    for name in SPLITS:
        share = getattr(s, name)
        out.append(_e("expect_column_values_to_be_in_set", "split_sizes", column="split", value_set=[name], mostly=max(share - tol, 0.0)))
        if spec.is_classification:
            for cls, whole in class_shares.items():
                out.append(
                    _e("expect_column_values_to_be_in_set", "stratification", column=spec.target.column, value_set=[cls],
                       mostly=max(whole - tol, 0.0), row_condition=f'split=="{name}"', condition_parser="pandas")
                )
    return out


def predictions_suite(spec: PipelineSpec, expected_rows: int) -> list[dict]:
    """Over the joined transform output: columns ``label``, ``prediction`` (and ``predicted_label``)."""
    out = [
        _e("expect_table_row_count_to_equal", "completeness", value=expected_rows),
        _e("expect_column_values_to_not_be_null", "completeness", column="prediction"),
    ]
    if spec.problem_type == "binary_classification":
        out.append(_e("expect_column_values_to_be_between", "range", column="prediction", min_value=0.0, max_value=1.0))
    if spec.is_classification:
        out.append(_e("expect_column_values_to_be_in_set", "range", column="predicted_label", value_set=list(spec.target.classes)))
        out.append(_e("expect_column_unique_value_count_to_be_between", "class_balance", column="predicted_label", min_value=2))
    return out
