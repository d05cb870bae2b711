"""The data section of a run's report: what the data looks like before the model is judged.

Pure functions over a frame and the spec (pandas for the figures, matplotlib on Agg for the
charts, as :mod:`gated_ml.evaluation.plots`): descriptive statistics per column, histograms,
box plots, the correlation heatmap of the numeric features, the target's class balance
(classification) or histogram (regression), and the drift of every column against the
baseline over dates, read from the curated gate's records. Degenerate data (a constant
column, an all-null column, one class, no numeric feature) is described, never an error.
"""

from __future__ import annotations

import io
import math

from gated_ml.spec import PipelineSpec

DRIFT_EXPECTATION = "expect_column_kl_divergence_to_be_less_than"
FRAMES = ("batch", "window")  # the run's curated batch; its window (train + validation + test)
CHARTS = ("histograms", "box_plots", "correlation", "target")
MAX_CATEGORIES = 30  # a string column's counts beyond this many values are summed as "(other)"
_NUMERIC_STATS = {"mean": "mean", "std": "std", "min": "min", "25%": "q25", "50%": "median", "75%": "q75", "max": "max"}


# --- statistics ------------------------------------------------------------------------------
def _number(x) -> float | None:
    """A JSON number, or None for pandas' NaN (the statistic of an empty or all-null column)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _numeric_stats(series) -> dict:
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce")
    described = values.describe()  # count, mean, std, min, quartiles, max (NaN where undefined)
    return {"kind": "numeric", "count": int(described["count"]), "nulls": int(values.isna().sum())} | {
        key: _number(described[name]) for name, key in _NUMERIC_STATS.items()
    }


def _categorical_stats(series) -> dict:
    counts = series.dropna().astype(str).value_counts()
    shown = {str(k): int(v) for k, v in counts.head(MAX_CATEGORIES).items()}
    if len(counts) > MAX_CATEGORIES:
        shown["(other)"] = int(counts.iloc[MAX_CATEGORIES:].sum())
    return {"kind": "categorical", "count": int(series.notna().sum()), "nulls": int(series.isna().sum()), "unique": len(counts), "categories": shown}


def column_stats(spec: PipelineSpec, frame) -> dict[str, dict]:
    """Per spec column present in ``frame``: count and nulls, then mean/std/min/quartiles/max or category counts."""
    out = {}
    for c in spec.columns:
        if c.name in frame.columns:
            out[c.name] = _categorical_stats(frame[c.name]) if c.type == "string" else _numeric_stats(frame[c.name])
    return out


def numeric_frame(spec: PipelineSpec, frame):
    """The numeric features of ``frame`` as floats (unparseable values as NaN), in spec order."""
    import pandas as pd

    cols = [c for c in spec.numeric_features if c in frame.columns]
    return pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce").astype(float) for c in cols}, index=frame.index)


def correlation(spec: PipelineSpec, frame) -> dict[str, dict[str, float | None]]:
    """Pearson correlation between the numeric features (None where undefined: a constant or all-null column)."""
    matrix = numeric_frame(spec, frame).corr()
    return {a: {b: _number(matrix.loc[a, b]) for b in matrix.columns} for a in matrix.index}


def target_summary(spec: PipelineSpec, frame) -> dict:
    """The class balance (count and share per class of the spec, then any other value seen) or the target's statistics."""
    column = spec.target.column
    if column not in frame.columns:
        return {"column": column, "missing": True}
    if not spec.is_classification:
        return {"column": column, **_numeric_stats(frame[column]), "kind": "regression"}
    counts = frame[column].dropna().astype(str).value_counts()
    classes = list(spec.target.classes or ()) + [str(k) for k in counts.index if str(k) not in (spec.target.classes or ())]
    total = int(counts.sum())
    balance = {k: {"count": int(counts.get(k, 0)), "share": (int(counts.get(k, 0)) / total) if total else None} for k in classes}
    return {"column": column, "kind": "classification", "rows": total, "classes": balance}


def profile(spec: PipelineSpec, frame) -> dict:
    """Everything the report's tables show about one frame (JSON-ready)."""
    return {
        "rows": len(frame),
        "columns": column_stats(spec, frame),
        "target": target_summary(spec, frame),
        "correlation": correlation(spec, frame),
    }


# --- charts -----------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, title: str):
    """A figure with ``n`` small axes (at least one), three to a row."""
    plt = _pyplot()
    cols = min(max(n, 1), 3)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    fig.suptitle(title)
    flat = list(axes.flat)
    for ax in flat[:n]:
        ax.locator_params(nbins=4)  # few ticks: legible small panels, and each tick costs drawing time
        ax.tick_params(labelsize=7)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _nothing(ax, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def histograms(spec: PipelineSpec, frame, title: str) -> bytes:
    """One histogram per numeric feature, one bar chart of counts per string feature."""
    features = [c for c in spec.feature_columns if c.name in frame.columns]
    numbers = numeric_frame(spec, frame)
    fig, axes = _grid(len(features), title)
    for ax, c in zip(axes, features, strict=True):
        ax.set_title(c.name, fontsize=9)
        if c.type == "string":
            counts = frame[c.name].dropna().astype(str).value_counts().head(MAX_CATEGORIES)
            ax.bar(counts.index, counts.to_numpy(), color="#4c72b0") if len(counts) else _nothing(ax, "all null")
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        elif numbers[c.name].notna().any():
            ax.hist(numbers[c.name].dropna().to_numpy(), bins=20, color="#4c72b0")
        else:
            _nothing(ax, "all null")
    if not features:
        _nothing(fig.add_subplot(), "no feature columns")
    return _png(fig)


def box_plots(spec: PipelineSpec, frame, title: str) -> bytes:
    """One box plot per numeric feature (whiskers at 1.5 IQR, as the outlier gate's fences)."""
    numbers = numeric_frame(spec, frame)
    fig, axes = _grid(len(numbers.columns), title)
    for ax, name in zip(axes, numbers.columns, strict=True):
        values = numbers[name].dropna()
        if len(values):
            ax.boxplot(values.to_numpy(), whis=1.5, tick_labels=[""])
        else:
            _nothing(ax, "all null")
        ax.set_title(name, fontsize=9)
    if not len(numbers.columns):
        _nothing(fig.add_subplot(), "no numeric features")
    return _png(fig)


def correlation_heatmap(spec: PipelineSpec, frame, title: str) -> bytes:
    """The Pearson correlation of the numeric features, coloured from -1 to 1 (blank where undefined)."""
    plt = _pyplot()
    matrix = numeric_frame(spec, frame).corr()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * max(n, 2), 0.6 + 0.7 * max(n, 2)))
    ax.set_title(title)
    if n == 0:
        _nothing(ax, "no numeric features")
        return _png(fig)
    image = ax.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), matrix.index, fontsize=8)
    for i in range(n):
        for j in range(n):
            value = matrix.iat[i, j]
            ax.text(j, i, "n/a" if math.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _png(fig)


def target_chart(spec: PipelineSpec, frame, title: str) -> bytes:
    """The class balance as bars (classification) or the target's histogram (regression)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.set_title(title)
    summary = target_summary(spec, frame)
    if summary.get("missing"):
        _nothing(ax, f"no column {spec.target.column!r}")
    elif summary["kind"] == "classification":
        names = list(summary["classes"])
        ax.bar(names, [summary["classes"][k]["count"] for k in names], color="#4c72b0")
        ax.set_ylabel("rows")
    else:
        import pandas as pd

        values = pd.to_numeric(frame[spec.target.column], errors="coerce").dropna()
        ax.hist(values.to_numpy(), bins=20, color="#4c72b0") if len(values) else _nothing(ax, "all null")
        ax.set_xlabel(spec.target.column)
    return _png(fig)


def charts(spec: PipelineSpec, frame, label: str) -> dict[str, bytes]:
    """The four charts of one frame, by name (``histograms``, ``box_plots``, ``correlation``, ``target``)."""
    return {
        "histograms": histograms(spec, frame, f"Histograms ({label})"),
        "box_plots": box_plots(spec, frame, f"Box plots ({label})"),
        "correlation": correlation_heatmap(spec, frame, f"Correlation ({label})"),
        "target": target_chart(spec, frame, f"{'Class balance' if spec.is_classification else 'Target'} ({label})"),
    }


# --- drift over dates -------------------------------------------------------------------------
def drift_of_record(record: dict) -> dict[str, dict]:
    """``{column: {"kl": observed or None, "limit": threshold}}`` from one curated gate record (``quality/ds=…/curated.json``).

    Read from the record's GX validation result (numbers, not the findings' sentences): every
    result of the KL-divergence expectation, the column and threshold of its configuration.
    """
    out = {}
    for result in record.get("validation_result", {}).get("results", []):
        config = result.get("expectation_config", {})
        if config.get("type") != DRIFT_EXPECTATION:
            continue
        kwargs = config.get("kwargs", {})
        observed = (result.get("result") or {}).get("observed_value")
        out[kwargs["column"]] = {"kl": _number(observed), "limit": _number(kwargs.get("threshold"))}
    return out


def drift_series(records: dict[str, dict]) -> dict:
    """The drift of every column over dates from curated gate records keyed by ``ds``.

    ``{"dates": [...], "columns": {column: [kl or None per date]}, "limits": [limit or None per date]}``,
    dates in order; a date without a value for a column (not gated, no divergence computed) is None.
    """
    dates = sorted(records)
    per_date = {ds: drift_of_record(records[ds]) for ds in dates}
    columns = sorted({c for d in per_date.values() for c in d})
    limits = [next((v["limit"] for v in per_date[ds].values() if v["limit"] is not None), None) for ds in dates]
    return {"dates": dates, "columns": {c: [per_date[ds].get(c, {}).get("kl") for ds in dates] for c in columns}, "limits": limits}


def drift_chart(series: dict, title: str) -> bytes:
    """A line per column of its KL divergence from the baseline over dates, the gate's limit dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.set_title(title)
    dates = series["dates"]
    if not dates or not series["columns"]:
        _nothing(ax, "no drift recorded yet")
        return _png(fig)
    x = range(len(dates))
    for column, values in series["columns"].items():
        ax.plot(x, [math.nan if v is None else v for v in values], marker="o", label=column)
    ax.plot(x, [math.nan if v is None else v for v in series["limits"]], linestyle="--", color="#b00", label="limit")
    ax.set_xticks(list(x), dates, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("KL divergence from the baseline")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)
