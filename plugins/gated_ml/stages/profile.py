"""The data profile stage: what the run's data looks like, written beside its report.

For the run of ``ds`` it describes the batch (the curated partition of ``ds``) and the
window (the union of the train, validation and test splits the run trains on), and charts
the drift of every column against the baseline over dates from the curated gate's records
of ``ds`` and earlier. Everything goes to ``profile/ds=<ds>/`` in one staged write:
``profile.json`` and ``{batch,window}_{histograms,box_plots,correlation,target}.png``,
``drift.png``. The figures are :mod:`gated_ml.evaluation.data_profile`'s.
"""

from __future__ import annotations

import json
import logging
import re

from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.evaluation import data_profile
from gated_ml.job_requests import Environment, Run
from gated_ml.spec import PipelineSpec
from gated_ml.stages.data import read_splits

log = logging.getLogger(__name__)
_CURATED_RECORD = re.compile(r"ds=(\d{4}-\d{2}-\d{2})/curated\.json$")


def curated_gate_records(spec: PipelineSpec, env: Environment, ds: str) -> dict[str, dict]:
    """The curated gate's record of every date up to and including ``ds``, keyed by date."""
    zone = jr.locations(spec, env).zone("quality")
    records = {}
    for uri in storage.list_uris(zone):
        m = _CURATED_RECORD.match(uri[len(zone) :])
        if m and m.group(1) <= ds:
            records[m.group(1)] = json.loads(storage.read_text(uri))
    return records


def profile_data(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """Write ``profile/ds=<ds>/`` for the run; returns its location and row counts (a small XCom)."""
    loc = jr.locations(spec, env)
    frames = {"batch": batch_commit.read_parquet(loc.curated(run.ds)), "window": read_splits(spec, env, run).drop(columns="split")}
    drift = data_profile.drift_series(curated_gate_records(spec, env, run.ds))
    doc = {"ds": run.ds, **{name: data_profile.profile(spec, frame) for name, frame in frames.items()}, "drift": drift}
    prefix = loc.profile(run.ds)
    with storage.staged(prefix) as staging:
        for name, frame in frames.items():
            for chart, png in data_profile.charts(spec, frame, f"{name} of ds={run.ds}").items():
                (staging / f"{name}_{chart}.png").write_bytes(png)
        (staging / "drift.png").write_bytes(data_profile.drift_chart(drift, f"Drift from the baseline, up to ds={run.ds}"))
        (staging / "profile.json").write_text(json.dumps(doc, indent=2))
    log.info(
        "data profile of ds=%s: batch %d rows, window %d rows, drift over %d dates, under %s",
        run.ds,
        doc["batch"]["rows"],
        doc["window"]["rows"],
        len(drift["dates"]),
        prefix,
    )
    return {"profile_uri": prefix, "rows": {name: doc[name]["rows"] for name in data_profile.FRAMES}}
