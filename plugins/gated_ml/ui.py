"""The evaluation report of a DAG run, inside the Airflow UI (a FastAPI app of the project's plugin).

``GET /gated-ml/reports/{dag_id}/{run_id}`` renders the run's parameters, every data gate's
summary, the data section (statistics, charts and drift of the run's batch and window), the
metrics, the model gate's decision and reasons, the champion comparison and the plots;
``…/{name}.png`` and ``…/profile/{name}.png`` serve its images (known names only, 404
otherwise). The Airflow UI shows it as an external view on the DAG run, and the evaluate
task's extra link points to it.

Every route requires Airflow's own login and read access to the DAG's runs
(:func:`require_dag_run_read`): Airflow mounts a plugin's app without its core API's
authentication, so the app applies the core API's dependencies itself.
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response


async def airflow_user(request: Request):
    """The logged-in user, as the core API finds it: the UI's ``_token`` cookie (via Airflow's middleware), a bearer token, or the cookie.

    Airflow's ``get_user`` with its two token schemes resolved here: the API server's security
    module is imported when a request is served, not when every Airflow process loads the plugin.
    No token: 401; an invalid one: 403; an expired one: 401.
    """
    from airflow.api_fastapi.core_api import security

    return await security.get_user(request, await security.oauth2_scheme(request), await security.bearer_scheme(request))


def require_dag_run_read(request: Request, user: Annotated[Any, Depends(airflow_user)]) -> None:
    """Read access to the runs of the route's ``dag_id``, asked of the configured auth manager (403 without it)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    requires_access_dag("GET", DagAccessEntity.RUN)(request, user)


app = FastAPI(title="Gated ML reports", dependencies=[Depends(require_dag_run_read)])


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


def _read_json(uri: str) -> dict | None:
    from gated_ml import storage

    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def _gates_section(loc, ds: str) -> str:
    items = []
    for gate in ("landing", "curated", "splits", "transform_input", "predictions"):
        record = _read_json(loc.quality(ds) + f"{gate}.json")
        if record is None:
            continue
        lines = [
            f["check"] + ": " + (f"column {f['column']!r}: " if f["column"] else "") + f"observed {f['observed']}, threshold {f['threshold']}"
            for f in record["findings"]
            if not f["success"]
        ]
        items.append(f"<li><b>{html.escape(record['summary'])}</b>" + "".join(f"<br>{html.escape(line)}" for line in lines) + "</li>")
    return f"<h2>Data gates</h2><ul>{''.join(items) or '<li>none ran</li>'}</ul>"


def _model_section(dag_id: str, doc: dict | None, image_base: str) -> str:
    if doc is None:
        return "<p>No evaluation for this run (yet): a gate may have stopped it earlier.</p>"
    from gated_ml.evaluation.report import headline
    from gated_ml.spec import load_pipeline

    body = [
        f"<h2>Model gate: {html.escape(doc['decision'])}</h2>",
        "".join(f"<p class=reason>{html.escape(r)}</p>" for r in doc["reasons"]),
        f"<p>model <code>{html.escape(str(doc['model'].get('model_name')))}</code>, "
        f"registry version {doc['registry_version']}, threshold {doc['threshold']}</p>",
        "<h2>Test-set metrics</h2>",
        _table(headline(load_pipeline(dag_id), doc["metrics"])),
    ]
    if doc.get("champion_comparison"):
        body += ["<h2>Champion comparison</h2>", _table(doc["champion_comparison"])]
    body += [f'<img alt="{html.escape(p)}" src="{html.escape(image_base)}/{html.escape(p)}">' for p in doc["plots"]]
    return "".join(body)


_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:45%;margin:8px}.reason{color:#b00}"
    "tr.override{background:#fff3bf;font-weight:bold}"
)


@app.get("/reports/{dag_id}/{run_id}", response_class=HTMLResponse)
def report(dag_id: str, run_id: str) -> str:
    from gated_ml.evaluation import report_sections

    ds = ds_of_run(dag_id, run_id)
    loc = _locations(dag_id)
    image_base = "./" + quote(run_id, safe="")  # relative to the report's URL, wherever Airflow mounts the app
    body = [
        f"<h1>{html.escape(dag_id)} · ds={ds}</h1>",
        f"<p>run <code>{html.escape(run_id)}</code></p>",
        report_sections.run_parameters(_read_json(loc.runs(ds) + "params.json")),
        _gates_section(loc, ds),
        report_sections.data_section(_read_json(loc.profile(ds) + "profile.json"), image_base),
        _model_section(dag_id, _read_json(loc.evaluation(ds) + "metrics.json"), image_base),
    ]
    head = f"<meta charset=utf-8><title>{html.escape(dag_id)} report</title><style>{_STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"


def _png(uri: str) -> Response:
    from gated_ml import storage

    if not storage.exists(uri):
        raise HTTPException(404, "no such image for this run")
    return Response(storage.read_bytes(uri), media_type="image/png")


@app.get("/reports/{dag_id}/{run_id}/profile/{name}.png")
def profile_image(dag_id: str, run_id: str, name: str) -> Response:
    """A chart of the run's data profile: only the names the profile stage writes."""
    from gated_ml.evaluation.report_sections import PROFILE_IMAGES

    if name not in PROFILE_IMAGES:
        raise HTTPException(404, "no such image for this run")
    return _png(_locations(dag_id).profile(ds_of_run(dag_id, run_id)) + f"{name}.png")


@app.get("/reports/{dag_id}/{run_id}/{name}.png")
def plot(dag_id: str, run_id: str, name: str) -> Response:
    if not name.replace("_", "").isalnum():
        raise HTTPException(404, "no such plot")
    return _png(_locations(dag_id).evaluation(ds_of_run(dag_id, run_id)) + f"{name}.png")
