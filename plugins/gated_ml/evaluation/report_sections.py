"""HTML of the run report's "Run parameters" and "Data" sections, from the documents the run wrote.

Pure functions: ``params.json`` (``runs/ds=…/``: the trigger form's params and the overrides
of the run) and ``profile.json`` (``profile/ds=…/``: statistics of the run's batch and
window) in, HTML out, every value escaped. :mod:`gated_ml.ui` reads the documents and
serves the charts the sections point to.
"""

from __future__ import annotations

import html
import json

from gated_ml.evaluation.data_profile import CHARTS as PROFILE_CHARTS
from gated_ml.evaluation.data_profile import FRAMES

PROFILE_IMAGES = frozenset({f"{frame}_{chart}" for frame in FRAMES for chart in PROFILE_CHARTS} | {"drift"})
_NUMERIC = (
    ("count", "count"),
    ("nulls", "nulls"),
    ("mean", "mean"),
    ("std", "std"),
    ("min", "min"),
    ("q25", "25%"),
    ("median", "50%"),
    ("q75", "75%"),
    ("max", "max"),
)


def _cell(value) -> str:
    if value is None:
        return "<td>n/a</td>"
    if isinstance(value, float):
        return f"<td>{value:.4g}</td>"
    if isinstance(value, dict | list):
        return f"<td><code>{html.escape(json.dumps(value))}</code></td>"
    return f"<td>{html.escape(str(value))}</td>"


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def run_parameters(doc: dict | None) -> str:
    """The params the run was triggered with; each override of a default is highlighted and listed first."""
    if doc is None:
        return "<h2>Run parameters</h2><p>No parameters recorded for this run.</p>"
    params, overrides = doc.get("params") or {}, doc.get("overrides") or {}
    names = list(overrides) + [k for k in params if k not in overrides]
    rows = [
        f"<tr class=override><th>{html.escape(k)}</th>{_cell(overrides[k])}<td>overridden</td></tr>"
        if k in overrides
        else f"<tr><th>{html.escape(k)}</th>{_cell(params[k])}<td>default</td></tr>"
        for k in names
    ]
    lead = f"<p>{len(overrides)} overridden: {html.escape(', '.join(overrides))}</p>" if overrides else "<p>No overrides: every parameter at its default.</p>"
    run_id = f"<p>DAG run <code>{html.escape(str(doc['dag_run_id']))}</code></p>" if doc.get("dag_run_id") else ""
    return "<h2>Run parameters</h2>" + run_id + lead + _table(["parameter", "value", ""], rows)


def _stats_of_kind(profile: dict, kind: str):
    """``(column, frame, stats)`` for every column of either frame whose statistics are of ``kind``, batch beside window."""
    for column in profile["batch"]["columns"] | profile["window"]["columns"]:
        for frame in FRAMES:
            stats = profile[frame]["columns"].get(column)
            if stats and stats["kind"] == kind:
                yield column, frame, stats


def _numeric_rows(profile: dict) -> list[str]:
    return [
        f"<tr><th>{html.escape(column)}</th><td>{frame}</td>{''.join(_cell(stats[k]) for k, _ in _NUMERIC)}</tr>"
        for column, frame, stats in _stats_of_kind(profile, "numeric")
    ]


def _categorical_rows(profile: dict) -> list[str]:
    rows = []
    for column, frame, stats in _stats_of_kind(profile, "categorical"):
        counts = ", ".join(f"{k}: {v}" for k, v in stats["categories"].items())
        rows.append(
            f"<tr><th>{html.escape(column)}</th><td>{frame}</td>{_cell(stats['count'])}{_cell(stats['nulls'])}{_cell(stats['unique'])}{_cell(counts)}</tr>"
        )
    return rows


def _target_table(profile: dict) -> str:
    batch, window = profile["batch"]["target"], profile["window"]["target"]
    if batch.get("kind") != "classification":
        return ""
    rows = []
    for cls in batch["classes"] | window.get("classes", {}):
        cells = "".join(_cell((profile[f]["target"]["classes"].get(cls) or {}).get(k)) for f in FRAMES for k in ("count", "share"))
        rows.append(f"<tr><th>{html.escape(cls)}</th>{cells}</tr>")
    return f"<h3>Class balance of {html.escape(batch['column'])}</h3>" + _table(["class", "batch rows", "batch share", "window rows", "window share"], rows)


def _image(base: str, name: str) -> str:
    return f'<img alt="{html.escape(name)}" src="{html.escape(base)}/profile/{html.escape(name)}.png">'


def data_section(profile: dict | None, image_base: str) -> str:
    """Statistics of the batch beside the window's, the class balance, the charts of both and the drift chart.

    ``image_base`` is the URL (relative to the report) under which ``profile/<name>.png`` is served.
    """
    if profile is None:
        return "<h2>Data</h2><p>No data profile for this run (yet): a gate may have stopped it before the split.</p>"
    out = [
        "<h2>Data</h2>",
        f"<p>batch (the curated partition of ds={html.escape(profile['ds'])}): {profile['batch']['rows']} rows; "
        f"window (train + validation + test): {profile['window']['rows']} rows</p>",
    ]
    numeric, categorical = _numeric_rows(profile), _categorical_rows(profile)
    if numeric:
        out += ["<h3>Numeric columns</h3>", _table(["column", "of", *(label for _, label in _NUMERIC)], numeric)]
    if categorical:
        out += ["<h3>String columns</h3>", _table(["column", "of", "count", "nulls", "unique", "counts"], categorical)]
    out.append(_target_table(profile))
    for frame in FRAMES:
        out += [f"<h3>Charts of the {frame}</h3>", "".join(_image(image_base, f"{frame}_{chart}") for chart in PROFILE_CHARTS)]
    out += ["<h3>Drift from the baseline over dates</h3>", _image(image_base, "drift")]
    return "".join(out)
