"""One scoring DAG per pipeline spec, ``<pipeline>_scoring``, read as the pipeline:

    chain(choose_batch, wait_for_batch, approved_model, scoring_gate, score, predictions_gate, publish_predictions)

It runs on the spec's ``scoring.schedule`` (a cron or preset) OR whenever the pipeline's
approved model changes (the ``<pipeline>.approved_model`` asset); ``schedule: null`` runs it
on approvals only. A run with a logical date (scheduled, or triggered with one) scores the
batch of its date, waiting for it up to ``scoring.arrival``; a run without one (triggered
by the asset) scores the newest batch landed at or before its run time, and says which.
Stage logic lives in :mod:`gated_ml.stages.scoring`; the batch transform goes through
``target.task`` so `local` and `aws` both run it. The gates are the training DAG's
``gate_task`` (a final failure alerts ``gate_failed``); a batch that never arrives alerts
``arrival_missed``.
"""

from __future__ import annotations

import datetime as dt
import textwrap

from airflow.sdk import DAG, chain, task

from gated_ml import alerts, assets, settings
from gated_ml.dag_factory import gate_task, stage_task
from gated_ml.errors import airflow_outcome
from gated_ml.spec import PipelineSpec
from gated_ml.stages import scoring
from gated_ml.targets import Target, configured
from gated_ml.targets.base import current_run


def schedule(spec: PipelineSpec):
    """The spec's cron OR the approved-model asset; the asset alone when ``scoring.schedule`` is null."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    approved = assets.approved_model(spec)
    if spec.scoring.schedule is None:
        return [approved]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(spec.scoring.schedule, timezone="UTC"), assets=[approved])


def choose_batch_task(spec: PipelineSpec, target: Target):
    @task(task_id="choose_batch")
    @airflow_outcome
    def choose_batch():
        from airflow.sdk import get_current_context

        scheduled = get_current_context()["dag_run"].logical_date is not None
        return scoring.choose_batch(spec, target.environment(), current_run(), scheduled)

    return choose_batch()


def publish_task(spec: PipelineSpec, target: Target, **inputs):
    @task(task_id="publish_predictions")
    @airflow_outcome
    def publish_predictions(inputs: dict):
        from airflow.sdk import get_current_context

        return scoring.publish(spec, target.environment(), current_run(), scoring_run=get_current_context()["run_id"], **inputs)

    return publish_predictions(inputs)


def _doc(spec: PipelineSpec) -> str:
    when = f"`{spec.scoring.schedule}` (UTC) or" if spec.scoring.schedule else "only"
    return textwrap.dedent(
        f"""
        # {spec.scoring_dag_id}

        Scores new rows of **{spec.name}** with the approved model. Runs {when} when the
        approved model changes (asset `{spec.name}.approved_model`).

        Stages: choose the batch (`scoring/ds=…/`; an asset-triggered run takes the newest
        landed at or before its run time) → wait for it → the approved model (newest Approved
        package of `{spec.slug}`; none: refused) → scoring gate (schema, nulls, categories,
        drift from the training baseline above KL {spec.scoring.max_drift_kl}: refused) →
        batch transform with that model → predictions gate → publish
        `predictions/ds=…/predictions-v<version>.csv` with `….model.json` beside it.

        A refused batch is quarantined under `quarantine/ds=…/scoring_input/` and nothing is
        published. **Target:** `{settings.target()}`.
        """
    )


def build_scoring_dag(spec: PipelineSpec) -> DAG:
    target = configured()
    with DAG(
        dag_id=spec.scoring_dag_id,
        description=f"score new {spec.name} rows with the approved model"[:200],
        schedule=schedule(spec),
        start_date=dt.datetime.combine(spec.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        doc_md=_doc(spec),
        tags=["gated-ml", "scoring", spec.problem_type, *spec.tags],
        default_args={"owner": spec.owner, "retries": spec.retries, "retry_delay": dt.timedelta(seconds=spec.retry_delay_seconds)},
    ) as dag:
        batch = choose_batch_task(spec, target)
        arrived = target.arrival_sensor(spec, "wait_for_batch", batch_uri="{{ ti.xcom_pull(task_ids='choose_batch')['uri'] }}", arrival=spec.scoring_arrival)
        arrived.on_failure_callback = alerts.on_failure(spec, "arrival_missed")["on_failure_callback"]  # a batch that never arrived
        model = stage_task(spec, target, "approved_model", lambda s, e, r: scoring.approved_model(s, e, target.registry_client()))
        gated = gate_task(spec, target, "scoring_gate", scoring.gate_batch, batch=batch)
        scored = target.task(scoring.SCORE, spec, "score", model=model, batch=gated)
        checked = gate_task(spec, target, "predictions_gate", scoring.gate_predictions, batch=gated, scored=scored.output, model=model)
        published = publish_task(spec, target, batch=gated, scored=scored.output, model=model)
        chain(batch, arrived, model, gated, scored.head)
        chain(scored.output, checked, published)
    return dag
