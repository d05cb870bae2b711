"""The training DAG's trigger-form Params, checked once more at run time, and the spec a run sees with them applied.

Every param defaults to what the spec says, so a scheduled run (no ``conf``) is the spec's run:

- ``skip_tuning`` (false): train with the spec's hyperparameters only; no tuning job.
- ``max_tuning_jobs`` (``tuning.max_jobs``, 1 up to ``Tuning.max_jobs``' bound): the tuning
  job's ``MaxNumberOfTrainingJobs``. ``MaxParallelTrainingJobs`` is lowered to it when the spec's
  ``tuning.max_parallel`` is larger (more jobs at once than in all would not be a limit).
- ``deploy`` (true): false registers the model and leaves the endpoint as it is.
- ``threshold_<metric>`` per threshold the spec sets (its value): the model gate's bound,
  within what the metric can be (0..1 for scores, >= 0 for errors, <= 1 for r2).
- ``window_batches`` (``window.batches``): ``"all"`` or the last N curated batches.

The schema of each :class:`~airflow.sdk.Param` is what the trigger form, the REST API and the
CLI refuse values by; :func:`resolve` runs the same ``Param.resolve`` again in the DAG's
``check_params`` task (a run can reach its tasks with values no form saw: a cleared run of an
older DAG version, a ``conf`` key no param has), raising :class:`InvalidParams` naming the param,
the value and the allowed range. :func:`effective_spec` is the one way stages see the params:
the spec with the overrides applied and re-validated. :func:`record` writes what a run was asked
to do to ``runs/ds=…/params.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gated_ml import metric_names
from gated_ml.errors import InvalidParams, SpecError
from gated_ml.spec import PipelineSpec, Tuning

SKIP_TUNING = "skip_tuning"
MAX_TUNING_JOBS = "max_tuning_jobs"
DEPLOY = "deploy"
WINDOW_BATCHES = "window_batches"
_THRESHOLD = "threshold_"


@dataclass(frozen=True)
class Definition:
    """One param: its default (the spec's), the JSON schema the form and the DAG check, and that schema in words."""

    name: str
    default: Any
    title: str
    description: str
    section: str
    schema: dict
    allowed: str

    def param(self):
        from airflow.sdk import Param

        return Param(self.default, description=self.description, title=self.title, section=self.section, **self.schema)


def threshold_param(metric: str) -> str:
    """The param overriding the spec's ``evaluation.thresholds.<metric>``."""
    return _THRESHOLD + metric


def _field_bounds(model, field: str) -> tuple[int | None, int | None]:
    """A pydantic field's ``ge``/``le`` bounds, so the form allows exactly what the spec allows."""
    metadata = model.model_fields[field].metadata
    return next((m.ge for m in metadata if hasattr(m, "ge")), None), next((m.le for m in metadata if hasattr(m, "le")), None)


def _number(kind: str, low: float | None, high: float | None) -> tuple[dict, str]:
    """The schema of a number within ``[low, high]`` (either may be open), and its range in words."""
    schema = {"type": kind} | ({"minimum": low} if low is not None else {}) | ({"maximum": high} if high is not None else {})
    noun = "an integer" if kind == "integer" else "a number"
    if low is not None and high is not None:
        return schema, f"{noun} from {low} to {high}"
    return schema, f"{noun} >= {low}" if low is not None else f"{noun} <= {high}"


def threshold_bounds(metric: str) -> tuple[float | None, float | None]:
    """What a metric can be: an error is >= 0, r2 is at most 1, every other evaluation metric (a score or a share) is in 0..1."""
    if metric_names.lower_is_better(metric):
        return 0, None
    return (None, 1) if metric == "r2" else (0, 1)


def _flag(name: str, default: bool, title: str, description: str, section: str) -> Definition:
    return Definition(name, default, title, description, section, {"type": "boolean"}, "true or false")


def _threshold(spec: PipelineSpec, metric: str, value: float) -> Definition:
    low, high = threshold_bounds(metric)
    schema, allowed = _number("number", low, high)
    if (low is not None and value < low) or (high is not None and value > high):
        raise SpecError(f"pipeline {spec.name}: evaluation.thresholds.{metric} is {value}; a {metric} threshold must be {allowed}")
    bound = "most" if metric_names.lower_is_better(metric) else "least"
    return Definition(
        threshold_param(metric),
        value,
        f"Model gate: {metric}",
        f"The {bound} {metric} the model may have on the test split and pass the model gate (spec: {value}).",
        "Model gate",
        schema,
        allowed,
    )


def definitions(spec: PipelineSpec) -> dict[str, Definition]:
    """The training DAG's params for ``spec``, by name, in form order; cheap (DAG parse time)."""
    low, high = _field_bounds(Tuning, "max_jobs")
    jobs_schema, jobs_allowed = _number("integer", low, high)
    window = spec.window.batches
    found = [
        _flag(SKIP_TUNING, False, "Skip tuning", "Train with the spec's hyperparameters only: no tuning job.", "Training"),
        Definition(
            MAX_TUNING_JOBS,
            spec.tuning.max_jobs,
            "Max tuning jobs",
            f"Training jobs the tuning job may run (spec: {spec.tuning.max_jobs}); at most tuning.max_parallel "
            f"({spec.tuning.max_parallel}) run at once, fewer when this is lower.",
            "Training",
            jobs_schema,
            jobs_allowed,
        ),
        *(_threshold(spec, metric, value) for metric, value in spec.evaluation.thresholds.items()),
        _flag(DEPLOY, True, "Deploy", "Deploy an approved model to the endpoint; false registers it and leaves the endpoint as it is.", "Deployment"),
        Definition(
            WINDOW_BATCHES,
            window,
            "Training window (batches)",
            f'Train on "all" curated batches up to the run\'s date, or on the last N of them (spec: {window}).',
            "Data",
            {"type": ["integer", "string"], "minimum": 1, "pattern": "^all$"},  # minimum holds for integers, pattern for strings
            '"all" or an integer >= 1',
        ),
    ]
    return {d.name: d for d in found}


def params(spec: PipelineSpec) -> dict:
    """The DAG's ``params=``: one :class:`~airflow.sdk.Param` per definition."""
    return {name: d.param() for name, d in definitions(spec).items()}


def resolve(spec: PipelineSpec, given: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Every param's value for a run: each given one checked by its ``Param`` (as the form checks it), the others the spec's.

    Raises :class:`InvalidParams` for a value out of its range and, when ``strict`` (the
    training DAG's ``check_params``), for a name no param has. Not strict, other names are
    ignored: a stage run by another DAG (scoring, registry actions) carries that DAG's params.
    """
    from airflow.sdk.exceptions import ParamValidationError

    known = definitions(spec)
    unknown = sorted(set(given) - set(known))
    if unknown and strict:
        raise InvalidParams(f"unknown params {unknown} in the run's conf: this DAG's params are {list(known)}; remove them or check their spelling")
    values = {}
    for name, d in known.items():
        if name not in given:
            values[name] = d.default
            continue
        try:
            values[name] = d.param().resolve(given[name])
        except ParamValidationError:
            raise InvalidParams(
                f"param {name} = {json.dumps(given[name], default=str)} is refused: it must be {d.allowed} (the spec's value is {json.dumps(d.default)})"
            ) from None
    return values


def overrides(spec: PipelineSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The params whose value differs from the spec's."""
    defaults = {name: d.default for name, d in definitions(spec).items()}
    return {name: v for name, v in values.items() if name in defaults and v != defaults[name]}


def _spec_changes(spec: PipelineSpec, changed: Mapping[str, Any]) -> dict:
    """The spec fields the overridden params set, as a nested update of ``spec.model_dump()``."""
    update: dict = {}
    if MAX_TUNING_JOBS in changed:
        jobs = changed[MAX_TUNING_JOBS]
        update["tuning"] = {"max_jobs": jobs, "max_parallel": min(spec.tuning.max_parallel, jobs)}
    if WINDOW_BATCHES in changed:
        update["window"] = {"batches": changed[WINDOW_BATCHES]}
    thresholds = {name[len(_THRESHOLD) :]: v for name, v in changed.items() if name.startswith(_THRESHOLD)}
    if thresholds:
        update["evaluation"] = {"thresholds": {**spec.evaluation.thresholds, **thresholds}}
    return update


def apply(spec: PipelineSpec, values: Mapping[str, Any]) -> PipelineSpec:
    """``spec`` with the params' values in its fields, re-validated; ``spec`` itself when none differs."""
    from pydantic import ValidationError

    update = _spec_changes(spec, overrides(spec, values))
    if not update:
        return spec
    data = spec.model_dump()
    for section, fields in update.items():
        data[section] = {**data[section], **fields}
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as e:
        raise InvalidParams(f"the run's params {overrides(spec, values)} make an invalid spec: {e}") from None


def effective_spec(spec: PipelineSpec, run) -> PipelineSpec:
    """The spec as this run (a :class:`~gated_ml.job_requests.Run`) sees it: its params applied. Idempotent."""
    return apply(spec, resolve(spec, run.params, strict=False)) if run.params else spec


def value(spec: PipelineSpec, run, name: str):
    """One param's value for ``run`` (its given value, else the spec's)."""
    return resolve(spec, run.params, strict=False)[name]


def record(spec: PipelineSpec, env, run, dag_run_id: str) -> dict:
    """Check the run's params and write ``runs/ds=…/params.json``: ``{"dag_run_id", "params", "overrides"}``; returns it."""
    from gated_ml import storage
    from gated_ml.job_requests import locations

    values = resolve(spec, run.params)
    apply(spec, values)  # the spec they make must be valid too
    document = {"dag_run_id": dag_run_id, "params": values, "overrides": overrides(spec, values)}
    storage.write(locations(spec, env).runs(run.ds) + "params.json", json.dumps(document, indent=2))
    return document
