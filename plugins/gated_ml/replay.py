"""Replay: a bundled dataset cut into dated batches and landed as an upstream system would land them.

For demos and tests. The spec's ``replay`` section fixes the batch dates and the cut (see
:class:`gated_ml.spec.Replay`), so the batch of a date is the same whatever range is
replayed, on every machine. Each batch is a file in the source's own format (an ARFF batch
repeats the ARFF header, a csv batch its header line) named like the source, under
``landing/ds=<date>/``. A landed batch is never overwritten: the landing zone belongs to
upstream, and a run that already read a batch must find the same bytes there.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import random

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import StageError
from gated_ml.spec import PROJECT_ROOT, PipelineSpec

log = logging.getLogger(__name__)


def batch_dates(spec: PipelineSpec) -> list[str]:
    r = _replay(spec)
    return [(r.first_ds + dt.timedelta(days=r.every_days * k)).isoformat() for k in range(r.batches)]


def _replay(spec: PipelineSpec):
    if spec.replay is None:
        raise StageError(f"include/pipelines/{spec.name}.yaml has no replay section: its batches come from upstream only")
    return spec.replay


def _cut_in_order(spec: PipelineSpec, rows: list[str]) -> list[list[int]]:
    """Row indices per batch: shuffled with the split seed, the first batch ``initial_share`` of them."""
    r = _replay(spec)
    order = list(range(len(rows)))
    random.Random(spec.split.seed).shuffle(order)
    first = round(len(rows) * r.initial_share) if r.batches > 1 else len(rows)
    parts, rest, n = [order[:first]], order[first:], r.batches - 1
    start = 0
    for k in range(n):  # the rest in equal parts (the first ones one longer)
        size = len(rest) // n + (1 if k < len(rest) % n else 0)
        parts.append(rest[start : start + size])
        start += size
    return [sorted(p) for p in parts]


def _cut_by_date(spec: PipelineSpec, rows: list[str], declared: list[str] | None) -> list[list[int]]:
    """Row indices per batch: a row belongs to the first batch date on or after its own date."""
    fmt, column = jr.raw_format(spec), _replay(spec).date_column
    dates = [dt.date.fromisoformat(d) for d in batch_dates(spec)]
    parts: list[list[int]] = [[] for _ in dates]
    for i, line in enumerate(rows):
        fields = next(csv.reader([line.strip()], delimiter=spec.source.delimiter, skipinitialspace=True))
        names = fmt.column_names(declared, len(fields))
        if column not in names:
            raise StageError(f"replay: row {i + 1} of {spec.source.path} has no {column!r} field (it has {names})")
        try:
            when = dt.date.fromisoformat(fields[names.index(column)].strip().strip("'\"")[:10])
        except ValueError:
            raise StageError(f"replay: row {i + 1}: {column} = {fields[names.index(column)]!r} is not a date (YYYY-MM-DD)") from None
        k = next((k for k, d in enumerate(dates) if when <= d), None)
        if k is not None:
            parts[k].append(i)
    return parts


def batches(spec: PipelineSpec) -> dict[str, bytes]:
    """Every replay batch of the spec's source file, by ``ds``, in the source's format."""
    path = PROJECT_ROOT / spec.source.path
    if not path.is_file():
        raise StageError(f"source file {path} (source.path in include/pipelines/{spec.name}.yaml) does not exist")
    head, rows, declared = jr.raw_format(spec).split_lines(path.read_text(encoding="utf-8"))
    parts = _cut_by_date(spec, rows, declared) if _replay(spec).date_column else _cut_in_order(spec, rows)
    out = {}
    for ds, part in zip(batch_dates(spec), parts, strict=True):
        body = "".join(head) + "".join(rows[i] if rows[i].endswith("\n") else rows[i] + "\n" for i in part)
        out[ds] = body.encode("utf-8")
    return out


def land(spec: PipelineSpec, env, ds_from: str, ds_to: str) -> list[str]:
    """Land the replay batches dated ``ds_from``..``ds_to`` (inclusive); return the URIs written.

    A batch already in the landing zone is left as it is (and not returned).
    """
    if ds_from > ds_to:
        raise StageError(f"replay: FROM {ds_from} is after TO {ds_to}")
    written = []
    for ds, body in batches(spec).items():
        if not ds_from <= ds <= ds_to:
            continue
        uri = jr.locations(spec, env).landing(ds) + jr.raw_file_name(spec)
        if storage.exists(uri):
            log.info("replay: %s already landed, left as it is", uri)
            continue
        storage.write(uri, body)
        written.append(uri)
        log.info("replay: landed %s", uri)
    return written
