"""The operators' actions as small DAGs per pipeline, triggered from the UI's form or the CLI (``gated_ml.cli approve|…``):

- ``<pipeline>_review_model`` (version, decision, reason): read_request → review_version → announce_approved_model
- ``<pipeline>_promote_model`` (version, reason): read_request → check_approved → deploy_version → announce_approved_model
- ``<pipeline>_rollback_model`` (reason): read_request → plan_rollback → deploy_previous → reject_rolled_back → announce_approved_model

The form's Params are checked by Airflow when the run is triggered and again by ``read_request``
(:class:`gated_ml.stages.approvals.ActionRequest`), which also names who asked (the run's
triggering user). What each task does is a plain function of :mod:`gated_ml.stages.approvals`;
the deployments go through ``target.task`` with the training DAG's verb (on `aws`,
``DeployEndpointOperator`` with its smoke test and rollback), one at a time per pipeline
(the endpoint pool). Every action ends by emitting the approved-model asset event.
"""

from __future__ import annotations

import datetime as dt
import textwrap

from airflow.sdk import DAG, Param, TaskGroup, chain, task

from gated_ml import assets
from gated_ml.dag_factory import endpoint_pool
from gated_ml.errors import airflow_outcome
from gated_ml.spec import PipelineSpec
from gated_ml.stages import approvals
from gated_ml.stages.approvals import MAX_REASON, MIN_REASON, ActionRequest
from gated_ml.targets import Target

REASON = Param(type="string", minLength=MIN_REASON, maxLength=MAX_REASON, title="Reason", description="Why: recorded with your user name in the Model Registry")
VERSION = Param(type="integer", minimum=1, title="Version", description="The registry version number (make versions lists them)")
DECISION = Param(type="string", enum=list(approvals.DECISIONS), title="Decision", description="The version's new approval in the Model Registry")


def action_task(spec: PipelineSpec, target: Target, task_id: str, fn, multiple_outputs: bool = False, **inputs):
    """A task that runs ``fn(spec, env, registry client, **inputs)`` (an approvals function) on the target."""

    @task(task_id=task_id, multiple_outputs=multiple_outputs)
    @airflow_outcome
    def run_action(inputs: dict):  # one dict, not **kwargs: Airflow passes its context into **kwargs
        return fn(spec, target.environment(), target.registry_client(), **inputs)

    return run_action(inputs)


def announce_task(spec: PipelineSpec, target: Target, fn, **inputs):
    """``announce_approved_model``: emits the approved-model asset event, ``extra`` = ``fn(spec, env, client, **inputs)`` (a Skip emits nothing)."""
    approved = assets.approved_model(spec)

    @task(task_id="announce_approved_model", outlets=[approved])
    @airflow_outcome
    def announce(inputs: dict):
        from airflow.sdk import get_current_context

        extra = fn(spec, target.environment(), target.registry_client(), **inputs)
        get_current_context()["outlet_events"][approved].extra = extra
        return extra

    return announce(inputs)


def read_request(action: str):
    """``read_request``: the run's Params and its triggering user, checked (:class:`ActionRequest`)."""

    @task(task_id="read_request")
    @airflow_outcome
    def read():
        import getpass

        from airflow.sdk import get_current_context

        context = get_current_context()
        params, run = context["params"], context["dag_run"]
        decision = params.get("decision")
        return ActionRequest(
            action=approvals.ACTION_OF.get(decision, action) if action == "review" else action,
            by=approvals.triggered_by(run.triggering_user_name, getpass.getuser()),
            reason=params.get("reason"),
            run_key=f"{run.dag_id}/{run.run_id}",
            version=params.get("version"),
            decision=decision,
        ).as_dict()

    return read()


def _announce(spec, env, client, asked: dict) -> dict:
    return approvals.announcement(spec, env, client, ActionRequest(**asked))


def _deploy(spec: PipelineSpec, target: Target, task_id: str, version, asked):
    with TaskGroup("deployment", tooltip="the endpoint, one deployment of the pipeline at a time", default_args={"pool": endpoint_pool(spec)}):
        return target.task(approvals.PROMOTE, spec, task_id, version=version, asked=asked)


def _dag(spec: PipelineSpec, suffix: str, doc: str, params: dict) -> DAG:
    return DAG(
        dag_id=f"{spec.name}_{suffix}",
        description=doc.strip().splitlines()[0],
        schedule=None,
        start_date=dt.datetime.combine(spec.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        params=params,
        doc_md=textwrap.dedent(doc),
        tags=["gated-ml", "operations"],
        default_args={"owner": spec.owner, "retries": spec.retries, "retry_delay": dt.timedelta(seconds=spec.retry_delay_seconds)},
    )


def review_dag(spec: PipelineSpec, target: Target) -> DAG:
    doc = f"""
    Approve or reject a model version of {spec.name} in the Model Registry (from any status).

    Recorded with who and why (``ApprovalDescription``, and the version's history in the lake); emits
    `{spec.name}.approved_model`. Rejecting the version that serves does not take it off the endpoint: roll back for that.
    """
    with _dag(spec, "review_model", doc, {"version": VERSION, "decision": DECISION, "reason": REASON}) as dag:
        asked = read_request("review")
        reviewed = action_task(spec, target, "review_version", lambda s, e, c, asked: approvals.review(s, e, c, ActionRequest(**asked)), asked=asked)
        chain(asked, reviewed, announce_task(spec, target, _announce, asked=asked))
    return dag


def promote_dag(spec: PipelineSpec, target: Target) -> DAG:
    doc = f"""
    Promote an Approved model version of {spec.name} to the endpoint.

    Deploys the version's existing SageMaker model as the training DAG does (smoke test against its own batch-transform
    outputs, rollback when it fails), then makes it the serving version; emits `{spec.name}.approved_model`.
    """
    with _dag(spec, "promote_model", doc, {"version": VERSION, "reason": REASON}) as dag:
        asked = read_request("promote")
        version = action_task(spec, target, "check_approved", lambda s, e, c, asked: approvals.promotable(s, e, c, ActionRequest(**asked)), asked=asked)
        deployed = _deploy(spec, target, "deploy_version", version, asked)
        chain(asked, version, deployed.head)
        chain(deployed.output, announce_task(spec, target, _announce, asked=asked))
    return dag


def rollback_dag(spec: PipelineSpec, target: Target) -> DAG:
    doc = f"""
    Roll back {spec.name}'s endpoint to the version that served before the serving one (the latest earlier deployment still Approved).

    Deploys that version as a promotion does, then sets the rolled-back version Rejected ("rolled back by <who>: <why>");
    emits `{spec.name}.approved_model`. Refused, changing nothing, when no earlier Approved version served.
    """
    with _dag(spec, "rollback_model", doc, {"reason": REASON}) as dag:
        asked = read_request("rollback")
        plan = action_task(spec, target, "plan_rollback", lambda s, e, c: approvals.rollback_plan(s, e, c), multiple_outputs=True)
        deployed = _deploy(spec, target, "deploy_previous", plan["previous"], asked)
        rejected = action_task(
            spec,
            target,
            "reject_rolled_back",
            lambda s, e, c, asked, serving: approvals.reject_rolled_back(s, e, c, ActionRequest(**asked), serving),
            asked=asked,
            serving=plan["serving"],
        )
        chain(asked, plan, deployed.head)
        chain(deployed.output, rejected, announce_task(spec, target, _announce, asked=asked))
    return dag


def action_dags(spec: PipelineSpec, target: Target) -> list[DAG]:
    """The three action DAGs of a pipeline: review, promote, roll back."""
    return [build(spec, target) for build in (review_dag, promote_dag, rollback_dag)]
