"""Replay: a bundled dataset cut into dated batches and landed as an upstream system would land them.

For demos and tests. The spec's ``replay`` section fixes the batch dates and the cut (see
:class:`gated_ml.spec.Replay`), so the batch of a date is the same whatever range is
replayed, on every machine. Each batch is a file in the source's own format (an ARFF batch
repeats the ARFF header, a csv batch its header line) named like the source, under
``landing/ds=<date>/``. A landed batch is never overwritten: the landing zone belongs to
upstream, and a run that already read a batch must find the same bytes there.

Scoring batches (``zone="scoring"``, :class:`gated_ml.spec.ScoringReplay`) are new rows for
the ``<pipeline>_scoring`` DAG: per date, a deterministic draw of the bundled rows, in the
source's format with the target column dropped, under ``scoring/ds=<date>/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
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


def scoring_dates(spec: PipelineSpec) -> list[str]:
    r = spec.scoring.replay
    first = r.first_ds or (spec.replay.first_ds if spec.replay else None)
    if first is None:
        raise StageError(f"include/pipelines/{spec.name}.yaml: set scoring.replay.first_ds (there is no replay section to take it from)")
    return [(first + dt.timedelta(days=r.every_days * k)).isoformat() for k in range(r.batches)]


def _without_target(spec: PipelineSpec, head: list[str], rows: list[str], declared: list[str] | None) -> tuple[list[str], list[str]]:
    """The header and rows with the target field removed (an ARFF ``@attribute`` line, a csv header field, each row's field)."""
    fmt = jr.raw_format(spec)
    n_fields = len(next(csv.reader([rows[0].strip()], delimiter=spec.source.delimiter, skipinitialspace=True))) if rows else len(spec.columns)
    names = fmt.column_names(declared, n_fields)
    if spec.target.column not in names:
        raise StageError(f"replay: {spec.source.path} has no {spec.target.column!r} field to drop (it has {names})")
    at = names.index(spec.target.column)

    def drop(line: str) -> str:
        fields = next(csv.reader([line.strip()], delimiter=spec.source.delimiter, skipinitialspace=True))
        out = io.StringIO()
        csv.writer(out, delimiter=spec.source.delimiter, lineterminator="\n").writerow(fields[:at] + fields[at + 1 :])
        return out.getvalue()

    if spec.source.format == "arff":
        attributes = [i for i, line in enumerate(head) if line.lstrip().lower().startswith("@attribute")]
        head = [line for i, line in enumerate(head) if i != attributes[at]]
    elif head:
        head = [*head[:-1], drop(head[-1])]
    return head, [drop(line) for line in rows]


def scoring_batches(spec: PipelineSpec) -> dict[str, bytes]:
    """Every scoring replay batch, by ``ds``: ``scoring.replay.rows`` rows drawn per date (seeded by the date), target dropped."""
    head, rows, declared = _source(spec)
    head, rows = _without_target(spec, head, rows, declared)
    out = {}
    for ds in scoring_dates(spec):
        drawn = sorted(random.Random(f"{spec.split.seed}/{ds}").sample(range(len(rows)), min(spec.scoring.replay.rows, len(rows))))
        out[ds] = ("".join(head) + "".join(rows[i] for i in drawn)).encode("utf-8")
    return out


def _source(spec: PipelineSpec) -> tuple[list[str], list[str], list[str] | None]:
    path = PROJECT_ROOT / spec.source.path
    if not path.is_file():
        raise StageError(f"source file {path} (source.path in include/pipelines/{spec.name}.yaml) does not exist")
    return jr.raw_format(spec).split_lines(path.read_text(encoding="utf-8"))


def batches(spec: PipelineSpec) -> dict[str, bytes]:
    """Every replay batch of the spec's source file, by ``ds``, in the source's format."""
    head, rows, declared = _source(spec)
    parts = _cut_by_date(spec, rows, declared) if _replay(spec).date_column else _cut_in_order(spec, rows)
    out = {}
    for ds, part in zip(batch_dates(spec), parts, strict=True):
        body = "".join(head) + "".join(rows[i] if rows[i].endswith("\n") else rows[i] + "\n" for i in part)
        out[ds] = body.encode("utf-8")
    return out


ZONES = ("landing", "scoring")


def dates(spec: PipelineSpec, zone: str = "landing") -> list[str]:
    """The replay dates of a zone: training batches (``landing``) or scoring batches (``scoring``)."""
    return scoring_dates(spec) if zone == "scoring" else batch_dates(spec)


def land(spec: PipelineSpec, env, ds_from: str, ds_to: str, zone: str = "landing") -> list[str]:
    """Land the replay batches of ``zone`` dated ``ds_from``..``ds_to`` (inclusive); return the URIs written.

    A batch already in the zone is left as it is (and not returned).
    """
    if zone not in ZONES:
        raise StageError(f"replay: zone {zone!r} is not one of {list(ZONES)}")
    if ds_from > ds_to:
        raise StageError(f"replay: FROM {ds_from} is after TO {ds_to}")
    written = []
    cut = scoring_batches(spec) if zone == "scoring" else batches(spec)
    loc = jr.locations(spec, env)
    for ds, body in cut.items():
        if not ds_from <= ds <= ds_to:
            continue
        uri = (loc.scoring(ds) if zone == "scoring" else loc.landing(ds)) + jr.raw_file_name(spec)
        if storage.exists(uri):
            log.info("replay: %s already landed, left as it is", uri)
            continue
        storage.write(uri, body)
        written.append(uri)
        log.info("replay: landed %s", uri)
    return written
