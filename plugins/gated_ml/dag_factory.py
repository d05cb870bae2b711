"""One Airflow DAG per pipeline spec, read as the pipeline:

    chain(check_params, ingest, etl, features, training, batch_transform, evaluate, deployment)

Each task group is built by a small function from the stage functions
(:mod:`gated_ml.stages`) and the configured target (:mod:`gated_ml.targets`): a step that
calls AWS goes through ``target.task``, plain work (gates, the split, the model choice) is a
stage task. The factory holds no stage logic and never asks which target it builds for.

Parse-time work is limited to reading the spec: no AWS, SDK, pandas or GX import, no clock
or uuid in names. Every request is built inside its task from the spec and the run (logical
date, try number). A refusal (a failed gate, the model gate) fails its task without retry
and leaves everything downstream unrun (:mod:`gated_ml.errors`). The DAG's trigger-form
params (:mod:`gated_ml.run_params`) are checked by its first task and reach every stage as
the spec with them applied (``run_params.effective_spec``).
"""

from __future__ import annotations

import datetime as dt
import textwrap

from airflow.sdk import DAG, TaskGroup, chain, task

from gated_ml import alerts, assets, run_params, settings
from gated_ml.errors import SpecError, airflow_outcome
from gated_ml.metric_names import lower_is_better
from gated_ml.spec import PipelineSpec
from gated_ml.stages import code as code_stage
from gated_ml.stages import data, deployment, gates, profile, training, transform
from gated_ml.targets import Target, configured
from gated_ml.targets.base import current_run


def stage_task(spec: PipelineSpec, target: Target, task_id: str, fn, *, task_args: dict | None = None, **inputs):
    """A task that runs ``fn(spec, env, run, **inputs)`` (a stage function) with the target's environment (``task_args``: the task's own)."""

    @task(task_id=task_id, **(task_args or {}))
    @airflow_outcome
    def run_stage(inputs: dict):  # one dict, not **kwargs: Airflow passes its context into **kwargs
        run = current_run()
        return fn(run_params.effective_spec(spec, run), target.environment(), run, **inputs)

    return run_stage(inputs)


def gate_task(spec: PipelineSpec, target: Target, task_id: str, fn, **inputs):
    """A stage task that runs a gate: when it finally fails, the configured notifier alerts (``gate_failed``)."""
    return stage_task(spec, target, task_id, fn, task_args=alerts.on_failure(spec, "gate_failed"), **inputs)


def pools(spec: PipelineSpec) -> dict[str, int]:
    """The pools a pipeline's tasks use, with their slots (created by ``make airflow-db`` / ``gated_ml.cli setup``).

    ``endpoint``: one deployment at a time. ``etl``: no more ETL runs at once than the Glue
    job's ``MaxConcurrentRuns`` (a backfill's extra runs wait in Airflow instead of failing).
    """
    return {endpoint_pool(spec): 1, etl_pool(spec): spec.max_active_runs}


def endpoint_pool(spec: PipelineSpec) -> str:
    return f"gated-ml-{spec.slug}-endpoint"


def etl_pool(spec: PipelineSpec) -> str:
    return f"gated-ml-{spec.slug}-etl"


def check_params_task(spec: PipelineSpec, target: Target):
    """The first task: the run's params checked again (a run can get here with values no form saw) and recorded in ``runs/ds=…/params.json``."""

    @task(task_id="check_params")
    @airflow_outcome
    def check_params(run_id=None):  # Airflow fills run_id from its context
        return run_params.record(spec, target.environment(), current_run(), run_id)

    return check_params()


# --- the task groups, in pipeline order --------------------------------------------------
def ingest_group(spec: PipelineSpec, target: Target) -> TaskGroup:
    # the group's alert is the sensor's (a missed arrival); the landing gate names its own
    missed = alerts.on_failure(spec, "arrival_missed")
    with TaskGroup("ingest", tooltip="wait for the batch of the run's date and check it can be read", default_args=missed) as group:
        chain(
            target.arrival_sensor(spec, "wait_for_batch"),
            gate_task(spec, target, "landing_gate", lambda s, e, r: gates.gate_landing(s, e, r, data.batch_uri(s, e.bucket, r.ds))),
        )
    return group


def etl_group(spec: PipelineSpec, target: Target, code) -> TaskGroup:
    limited = {"pool": etl_pool(spec)}  # the Glue job's concurrent-run limit
    tooltip = "Glue ETL to curated Parquet, the baseline settled, the curated gate, the catalog partition"
    with TaskGroup("etl", tooltip=tooltip, default_args=limited) as group:
        curated = target.task(data.GLUE_ETL, spec, "glue_etl", code=code)

        # runs of several dates at once: no later batch is gated against itself before the baseline exists
        @task.sensor(task_id="baseline_settled", poke_interval=spec.arrival.poke_seconds, timeout=spec.arrival.timeout_minutes * 60, mode="reschedule")
        @airflow_outcome
        def baseline_settled():
            run = current_run()
            return data.baseline_settled(run_params.effective_spec(spec, run), target.environment(), run)

        curated_ok = gate_task(spec, target, "curated_gate", gates.gate_curated)
        partition = target.task(data.CATALOG_PARTITION, spec, "catalog_partition")

        @task(task_id="curated_asset", outlets=[assets.curated(spec)])
        def curated_asset(partition: dict | None):
            """The batch passed the curated gate and is in the catalog: emit ``<pipeline>.curated`` (DAGs may be scheduled on it)."""
            from airflow.sdk import get_current_context

            extra = {"ds": current_run().ds, "partition": partition}
            get_current_context()["outlet_events"][assets.curated(spec)].extra = extra
            return extra

        chain(curated.output, baseline_settled(), curated_ok, partition.head)
        curated_asset(partition.output)
    return group


def features_group(spec: PipelineSpec, target: Target) -> TaskGroup:
    with TaskGroup("features", tooltip="the training window (every gate decided), its split by row hash, the splits gate, the data profile") as group:

        @task.sensor(task_id="window_settled", poke_interval=spec.arrival.poke_seconds, timeout=spec.arrival.timeout_minutes * 60, mode="reschedule")
        @airflow_outcome
        def window_settled():
            run = current_run()
            return data.window_settled(run_params.effective_spec(spec, run), target.environment(), run)

        split = stage_task(spec, target, "split", data.split)
        chain(window_settled(), split, gate_task(spec, target, "splits_gate", gates.gate_splits))
        split >> stage_task(spec, target, "profile_data", profile.profile_data)  # the report's data section
    return group


def training_group(spec: PipelineSpec, target: Target, code):
    with TaskGroup("training", tooltip="SageMaker training and automatic model tuning") as group:
        trained = target.task(training.TRAIN, spec, "train", code=code)
        tuned = target.task(training.TUNE, spec, "tune", code=code)
        chosen = stage_task(
            spec, target, "select_model", lambda s, e, r, trained, tuned: training.select_model(s, trained, tuned), trained=trained.output, tuned=tuned.output
        )
    return group, chosen


def batch_transform_group(spec: PipelineSpec, target: Target, chosen, code):
    """The model, then batch transforms of the test split (gated on both sides), the validation split and the champion."""
    with TaskGroup("batch_transform", tooltip="input gate, model, batch transform of the test split, predictions gate") as group:
        input_ok = gate_task(spec, target, "transform_input_gate", gates.gate_transform_input)
        model = target.task(transform.CREATE_MODEL, spec, "create_model", chosen=chosen, code=code)
        test = target.task(transform.TRANSFORM_TEST, spec, "transform", model=model.output)
        input_ok >> test.head
        validation = target.task(transform.TRANSFORM_VALIDATION, spec, "transform_validation", model=model.output)
        champion = target.task(transform.TRANSFORM_CHAMPION, spec, "transform_champion", model=model.output)
        gate_task(
            spec, target, "predictions_gate", lambda s, e, r, transformed: gates.gate_predictions(s, e, r, transformed["output_uris"]), transformed=test.output
        )
    return group, {"model": model.output, "test": test.output, "validation": validation.output, "champion": champion.output}


def evaluate_task(spec: PipelineSpec, outputs: dict, chosen, code):
    from gated_ml.evaluation.operator import EvaluateModelOperator

    return EvaluateModelOperator(
        task_id="evaluate",
        pipeline=spec.name,
        test_output=outputs["test"],
        validation_output=outputs["validation"],
        champion_output=outputs["champion"],
        chosen=chosen,
        model=outputs["model"],
        code=code,
        **alerts.on_failure(spec, "model_rejected"),
    )


def deployment_group(spec: PipelineSpec, target: Target, outputs: dict, chosen, code, evaluation) -> TaskGroup:
    # one deployment of a pipeline at a time (runs of several dates may reach it together): a pool of one slot
    serialised = {"pool": endpoint_pool(spec), **alerts.on_failure(spec, "deployment_failed")}
    with TaskGroup(
        "deployment",
        tooltip="the model package in the registry, then (if the registry approves it) the real-time endpoint and its smoke test",
        default_args=serialised,
    ) as group:
        # the model registry's approval of the registered package is what the deployment reads
        package = target.task(deployment.REGISTER_MODEL_VERSION, spec, "register_model_version", chosen=chosen, evaluation=evaluation.output, code=code)
        announce_registered(spec, target, package.output)
        endpoint = target.task(
            deployment.DEPLOY_ENDPOINT,
            spec,
            "deploy_endpoint",
            model=outputs["model"],
            evaluation=evaluation.output,
            transformed=outputs["test"],
            package=package.output,
        )
        stage_task(
            spec,
            target,
            "smoke_test_endpoint",
            lambda s, e, r, endpoint, transformed: deployment.smoke_test(s, e, r, endpoint, transformed["output_uris"], target.runtime_client(endpoint)),
            endpoint=endpoint.output,
            transformed=outputs["test"],
        )
    return group


def announce_registered(spec: PipelineSpec, target: Target, package):
    """``announce_approved_model``: the approved-model asset event when the registry approved the registered package (skipped otherwise)."""
    from gated_ml.action_dags import announce_task
    from gated_ml.stages.approvals import registered_announcement

    def registered(s, e, client, package):
        from airflow.sdk import get_current_context

        run = get_current_context()["dag_run"]
        return registered_announcement(s, e, client, package, f"{run.dag_id}/{run.run_id}")

    return announce_task(spec, target, registered, package=package)


# --- the DAG -------------------------------------------------------------------------------
def _doc(spec: PipelineSpec) -> str:
    thresholds = ", ".join(f"{k} {'≤' if lower_is_better(k) else '≥'} {v}" for k, v in spec.evaluation.thresholds.items()) or "none"
    return textwrap.dedent(
        f"""
        # {spec.name}

        {spec.description.strip()}

        **Problem:** {spec.problem_type}, target `{spec.target.column}`.
        **Spec:** `include/pipelines/{spec.name}.yaml`. **Target:** `{settings.target()}`.

        Stages: land → landing gate (schema, parseability, duplicates) → Glue ETL →
        curated gate (nulls, outliers, class balance, drift) → split → splits gate (sizes,
        stratification, leakage) → train + tune ({spec.tuning.strategy}, {spec.tuning.max_jobs}
        jobs, objective `{spec.tuning.objective_metric}`) → model → transform input gate →
        batch transform → predictions gate → evaluate (model gate: {thresholds}) → deploy
        endpoint → smoke test.

        **Params** (the trigger form): skip tuning, max tuning jobs, deploy, the model gate's
        thresholds, the training window; the spec's values by default. `check_params` refuses a
        value out of range and records them in `runs/ds=…/params.json`.

        A failed gate fails its task with the column, figure and threshold, quarantines the
        batch under `quarantine/ds=…/` and leaves everything downstream unrun. Gate results
        are under `quality/ds=…/`, the evaluation report under `evaluation/ds=…/`.
        """
    )


def build_dag(spec: PipelineSpec) -> DAG:
    target = configured()
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description.strip().split("\n")[0][:200],
        schedule=spec.schedule,
        start_date=dt.datetime.combine(spec.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=spec.catchup,
        max_active_runs=spec.max_active_runs,
        doc_md=_doc(spec),
        tags=["gated-ml", spec.problem_type, *spec.tags],
        default_args={"owner": spec.owner, "retries": spec.retries, "retry_delay": dt.timedelta(seconds=spec.retry_delay_seconds)},
        params=run_params.params(spec),
    ) as dag:
        checked = check_params_task(spec, target)
        code = stage_task(spec, target, "package_code", lambda s, e, r: code_stage.package_code(s, e))
        ingest = ingest_group(spec, target)
        etl = etl_group(spec, target, code)
        features = features_group(spec, target)
        training_tasks, chosen = training_group(spec, target, code)
        scoring, outputs = batch_transform_group(spec, target, chosen, code)
        evaluation = evaluate_task(spec, outputs, chosen, code)
        deployment_tasks = deployment_group(spec, target, outputs, chosen, code, evaluation)
        checked >> code
        chain(checked, ingest, etl, features, training_tasks, scoring, evaluation, deployment_tasks)
    return dag


class InvalidSpecs(DAG):
    """Stands for the specs that failed to load: bagging it fails, which Airflow shows as an import error.

    Airflow records a DAG that fails ``validate()`` as an import error of its file and still
    loads the file's other DAGs, so one bad spec hides no other pipeline.
    """

    def __init__(self, errors: list[SpecError]):
        super().__init__(dag_id="invalid_pipeline_specs", schedule=None)
        self.spec_errors = errors

    def validate(self):
        raise SpecError("\n\n".join(str(e) for e in self.spec_errors))


def dags_of(spec: PipelineSpec) -> list[DAG]:
    """Every DAG of a pipeline: training, ``<pipeline>_scoring`` and the three operators' actions."""
    from gated_ml.action_dags import action_dags
    from gated_ml.scoring_dag import build_scoring_dag

    return [build_dag(spec), build_scoring_dag(spec), *action_dags(spec, configured())]


def build_dags(paths) -> dict[str, DAG]:
    """Every DAG of each valid spec (:func:`dags_of`), keyed by DAG id, plus :class:`InvalidSpecs` when any spec failed to load."""
    from gated_ml.spec import load_spec

    dags, errors = {}, []
    for path in paths:
        try:
            spec = load_spec(path)
        except SpecError as e:
            errors.append(e)
            continue
        dags.update((dag.dag_id, dag) for dag in dags_of(spec))
    if errors:
        dags["invalid_pipeline_specs"] = InvalidSpecs(errors)
    return dags
