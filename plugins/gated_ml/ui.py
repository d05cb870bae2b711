"""The evaluation report of a DAG run, inside the Airflow UI (a FastAPI app of the project's plugin).

``GET /gated-ml/reports/{dag_id}/{run_id}`` renders the run's metrics, the model gate's
decision and reasons, the champion comparison, the plots and every data gate's summary.
The Airflow UI shows it as an external view on the DAG run, and the evaluate task's
extra link points to it.
"""

from __future__ import annotations

import html
import json

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

app = FastAPI(title="Gated ML reports")


def ds_of_run(dag_id: str, run_id: str) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from gated_ml.naming import ds_of

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise HTTPException(404, f"no run {run_id!r} of DAG {dag_id!r}")
        return ds_of(run.logical_date or run.run_after)


def _locations(dag_id: str):
    from gated_ml import job_requests as jr
    from gated_ml.spec import SpecError, load_pipeline
    from gated_ml.targets import configured

    try:
        spec = load_pipeline(dag_id)
    except SpecError as e:
        raise HTTPException(404, str(e)) from None
    return jr.locations(spec, configured().environment())


def _table(rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(f'{v:.4f}' if isinstance(v, float) else str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


@app.get("/reports/{dag_id}/{run_id}", response_class=HTMLResponse)
def report(dag_id: str, run_id: str) -> str:
    from gated_ml import storage

    ds = ds_of_run(dag_id, run_id)
    loc = _locations(dag_id)
    uri = loc.evaluation(ds) + "metrics.json"
    gates = []
    for gate in ("landing", "curated", "splits", "transform_input", "predictions"):
        g = loc.quality(ds) + f"{gate}.json"
        if storage.exists(g):
            record = json.loads(storage.read_text(g))
            lines = [
                f["check"] + ": " + (f"column {f['column']!r}: " if f["column"] else "") + f"observed {f['observed']}, threshold {f['threshold']}"
                for f in record["findings"]
                if not f["success"]
            ]
            gates.append(f"<li><b>{html.escape(record['summary'])}</b>" + "".join(f"<br>{html.escape(line)}" for line in lines) + "</li>")
    body = [
        f"<h1>{html.escape(dag_id)} · ds={ds}</h1>",
        f"<p>run <code>{html.escape(run_id)}</code></p>",
        "<h2>Data gates</h2>",
        f"<ul>{''.join(gates) or '<li>none ran</li>'}</ul>",
    ]
    if storage.exists(uri):
        doc = json.loads(storage.read_text(uri))
        from gated_ml.evaluation.report import headline
        from gated_ml.spec import load_pipeline

        body += [
            f"<h2>Model gate: {html.escape(doc['decision'])}</h2>",
            "".join(f"<p class=reason>{html.escape(r)}</p>" for r in doc["reasons"]),
            f"<p>model <code>{html.escape(str(doc['model'].get('model_name')))}</code>, "
            f"registry version {doc['registry_version']}, threshold {doc['threshold']}</p>",
            "<h2>Test-set metrics</h2>",
            _table(headline(load_pipeline(dag_id), doc["metrics"])),
        ]
        if doc.get("champion_comparison"):
            body += ["<h2>Champion comparison</h2>", _table(doc["champion_comparison"])]
        body += [f'<img alt="{html.escape(p)}" src="{html.escape(run_id)}/{html.escape(p)}">' for p in doc["plots"]]
    else:
        body.append("<p>No evaluation for this run (yet): a gate may have stopped it earlier.</p>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:45%;margin:8px}.reason{color:#b00}"
    )
    head = f"<meta charset=utf-8><title>{html.escape(dag_id)} report</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"


@app.get("/reports/{dag_id}/{run_id}/{name}.png")
def plot(dag_id: str, run_id: str, name: str) -> Response:
    from gated_ml import storage

    if not name.replace("_", "").isalnum():
        raise HTTPException(404, "no such plot")
    uri = _locations(dag_id).evaluation(ds_of_run(dag_id, run_id)) + f"{name}.png"
    if not storage.exists(uri):
        raise HTTPException(404, "no such plot")
    return Response(storage.read_bytes(uri), media_type="image/png")
