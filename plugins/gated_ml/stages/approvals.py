"""Operators' actions on a pipeline's models: approve or reject a version, promote one to the endpoint, roll back.

The approval of a version lives in the Model Registry and is read and written only through a
boto3-shaped ``sagemaker`` client (``Target.registry_client()``: SageMaker's on `aws`), by
``UpdateModelPackage`` with ``ModelApprovalStatus`` and ``ApprovalDescription`` = ``"<who>: <why>"``.
The lake's version record gets a ``history`` entry per action (what reports and the CLI show).

- *The approved model* is :func:`gated_ml.evaluation.registry.approved` (the newest Approved
  version); *the serving model* is :func:`gated_ml.evaluation.registry.champion`.
- Rejecting the version that serves does not take it off the endpoint: the answer says so and
  points to a rollback.
- Promoting version V deploys V's existing SageMaker model through the training DAG's own verb
  (``deploy_endpoint``: :data:`PROMOTE`, smoke-tested against V's batch-transform test outputs)
  under an endpoint config named per action run (:func:`gated_ml.naming.action_name`), then
  crowns V. V must be Approved.
- Rolling back deploys the version that served before the serving one S (the latest earlier
  deployment, in ``registry/deployments/``, of a version still Approved), then sets S Rejected.

Every refusal happens before anything changes. The action DAGs (:mod:`gated_ml.action_dags`)
wire these functions into tasks; nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from gated_ml import job_requests as jr
from gated_ml import naming
from gated_ml.errors import Refusal, Skip, StageError
from gated_ml.evaluation import registry
from gated_ml.job_requests import Environment, Run
from gated_ml.spec import PipelineSpec
from gated_ml.steps import Step
from gated_ml.validation import validate_request

DECISIONS = ("Approved", "Rejected")
ACTION_OF = {"Approved": "approve", "Rejected": "reject"}  # a review's decision, as the action recorded
MIN_REASON, MAX_REASON = 5, 500  # ApprovalDescription holds "<who>: <why>" in at most 1024 characters


class ActionRefused(Refusal):
    """An operator's action that cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class ActionRequest:
    """What an operator asked for, and who: read from the action run's Params and its triggering user."""

    action: str
    by: str
    reason: str
    run_key: str  # <dag_id>/<run_id>: what names the action run's endpoint config
    version: int | None = None
    decision: str | None = None

    def __post_init__(self):
        reason = (self.reason or "").strip()
        if len(reason) < MIN_REASON or len(reason) > MAX_REASON:
            raise ActionRefused(
                f"{self.action}: reason is required, {MIN_REASON} to {MAX_REASON} characters (got {len(reason)}): say why, it is recorded with your name"
            )
        if self.version is not None and (isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1):
            raise ActionRefused(f"{self.action}: version must be a registry version number, an integer >= 1 (got {self.version!r})")
        if self.decision is not None and self.decision not in DECISIONS:
            raise ActionRefused(f"{self.action}: decision must be one of {', '.join(DECISIONS)} (got {self.decision!r})")

    def as_dict(self) -> dict:
        return asdict(self)


def triggered_by(user: str | None, local_user: str) -> str:
    """Who asked: the Airflow user who triggered the run; ``dag.test`` (the CLI, in process) names none, so the OS user, marked."""
    if user and user != "dag_test":
        return user
    return f"{local_user} (cli)"


# --- the Model Registry, through a boto3-shaped client -------------------------------------
def package_of(spec: PipelineSpec, client, number: int) -> dict | None:
    """The model package of registry version ``number`` (the newest naming it: a re-run of a date supersedes), or None."""
    for summary in sorted(registry.package_summaries(spec, client), key=lambda s: s["ModelPackageVersion"], reverse=True):
        package = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if str(package.get("CustomerMetadataProperties", {}).get("registry_version")) == str(number):
            return package
    return None


def target_version(spec: PipelineSpec, env: Environment, client, number: int) -> dict:
    """Version ``number`` as an action needs it: its lake record's model and date, its package and approval."""
    record = registry.version(spec, env, number)
    package = package_of(spec, client, number) if record is not None else None
    if record is None or package is None:
        known = sorted(v["version"] for v in registry.versions(spec, env))
        raise ActionRefused(
            f"registry version {number} of {spec.name} does not exist{' in the Model Registry' if record else ''} "
            f"(versions: {', '.join(map(str, known)) or 'none'}); list them with: make versions PIPELINE={spec.name}"
        )
    return {
        "version": number,
        "ds": record["ds"],
        "model_name": record["model_name"],
        "model_package_arn": package["ModelPackageArn"],
        "approval": package["ModelApprovalStatus"],
        "metadata": package.get("CustomerMetadataProperties", {}),
    }


def set_approval(spec: PipelineSpec, env: Environment, client, number: int, status: str, *, action: str, by: str, reason: str) -> dict:
    """``UpdateModelPackage`` of version ``number`` to ``status``, with ``"<by>: <reason>"``; the version's history records it."""
    target = target_version(spec, env, client, number)
    request = {
        "ModelPackageArn": target["model_package_arn"],
        "ModelApprovalStatus": status,
        "ApprovalDescription": f"{by}: {reason}"[:1024],
        # the same properties again: SageMaker keeps them either way; moto 5.2.5 (the emulator) clears those an update omits
        "CustomerMetadataProperties": target["metadata"],
    }
    client.update_model_package(**validate_request("sagemaker", "UpdateModelPackage", request))
    after = client.describe_model_package(ModelPackageName=target["model_package_arn"])["ModelApprovalStatus"]
    at = dt.datetime.now(dt.UTC).isoformat()
    registry.record_action(
        spec, env, number, {"action": action, "by": by, "reason": reason, "at": at, "approval_before": target["approval"], "approval_after": after}
    )
    return {**target, "approval_before": target["approval"], "approval": after}


def review(spec: PipelineSpec, env: Environment, client, request: ActionRequest) -> dict:
    """Approve or reject a version (from any status); what it means for the endpoint is in ``message``."""
    done = set_approval(spec, env, client, request.version, request.decision, action=request.action, by=request.by, reason=request.reason)
    message = f"version {request.version} of {spec.name}: {done['approval_before']} -> {done['approval']} by {request.by} ({request.reason})"
    champ = registry.champion(spec, env)
    if request.decision == "Rejected" and champ is not None and champ["version"] == request.version:
        message += (
            f". It still serves on endpoint {jr.endpoint_name(spec)} ({champ['endpoint_config']}): rejecting does not take it off;"
            f' roll back with: make rollback PIPELINE={spec.name} REASON="..."'
        )
    return {**done, "message": message}


def promotable(spec: PipelineSpec, env: Environment, client, request: ActionRequest) -> dict:
    """The version to promote; refused unless the Model Registry approves it."""
    target = target_version(spec, env, client, request.version)
    if target["approval"] != "Approved":
        raise ActionRefused(
            f"version {request.version} of {spec.name} is {target['approval']} in the Model Registry: only an Approved version is promoted;"
            f' approve it first: make approve PIPELINE={spec.name} VERSION={request.version} REASON="..."'
        )
    return target


def rollback_plan(spec: PipelineSpec, env: Environment, client) -> dict:
    """The serving version S and the one to roll back to: the latest version deployed before S that is still Approved."""
    champ = registry.champion(spec, env)
    if champ is None:
        raise ActionRefused(f"nothing serves for {spec.name}: there is nothing to roll back; promote a version instead")
    serving = champ["version"]
    history = registry.deployments(spec, env)
    current = max((i for i, d in enumerate(history) if d["endpoint_config"] == champ["endpoint_config"]), default=len(history))
    looked_at = []
    for earlier in reversed(history[:current]):
        if earlier["version"] == serving or earlier["version"] in looked_at:
            continue
        looked_at.append(earlier["version"])
        candidate = target_version(spec, env, client, earlier["version"])
        if candidate["approval"] == "Approved":
            return {"serving": target_version(spec, env, client, serving), "previous": candidate}
    seen = f"earlier deployed versions {looked_at} are no longer Approved" if looked_at else "no other version served before it"
    raise ActionRefused(
        f"cannot roll back {spec.name}: version {serving} serves and {seen}; approve and promote the version you want instead"
        f' (make promote PIPELINE={spec.name} VERSION=<n> REASON="...")'
    )


def reject_rolled_back(spec: PipelineSpec, env: Environment, client, request: ActionRequest, serving: dict) -> dict:
    """The version a rollback took off the endpoint is set Rejected, saying so."""
    why = f"rolled back by {request.by}: {request.reason}"
    return set_approval(spec, env, client, serving["version"], "Rejected", action="rollback", by=request.by, reason=why)


def announcement(spec: PipelineSpec, env: Environment, client, request: ActionRequest) -> dict:
    """The approved-model asset event's ``extra``: the approved model after the action, and the action."""
    approved = registry.approved(spec, env, client)
    return {"version": approved["version"] if approved else None, "action": request.action, "by": request.by, "reason": request.reason}


def registered_announcement(spec: PipelineSpec, env: Environment, client, package: dict, run_key: str) -> dict:
    """A training run's registered model: announced only when the Model Registry approved it (else :class:`Skip`)."""
    if package is None or package.get("approval") != "Approved":
        raise Skip(f"the registered model package is {(package or {}).get('approval', 'not registered')}: the approved model did not change")
    approved = registry.approved(spec, env, client)
    return {"version": approved["version"] if approved else None, "action": "registered", "by": run_key, "reason": "the model gate approved the model"}


# --- the deployment of an existing version: the training DAG's verb, named per action run ----------------
def _run_of(version: dict, try_number: int = 1) -> Run:
    """A run of the version's own date: where its test split and batch-transform outputs are."""
    return Run(dt.datetime.fromisoformat(version["ds"]).replace(tzinfo=dt.UTC), try_number)


def promote_request(spec: PipelineSpec, env: Environment, run: Run, *, version: dict, asked: dict) -> dict:
    """``CreateEndpointConfig`` for the version's existing model, under :func:`naming.action_name`, and the endpoint's update to it."""
    if version["approval"] != "Approved":  # promotable() refused it already; a stale input never deploys
        raise ActionRefused(f"version {version['version']} is {version['approval']}: only an Approved version is deployed")
    config = jr.endpoint_config(spec, _run_of(version, run.try_number), version["model_name"])
    name = naming.action_name(spec.slug, asked["action"], version["version"], asked["run_key"], run.try_number)
    config = validate_request("sagemaker", "CreateEndpointConfig", {**config, "EndpointConfigName": name})
    return {"EndpointConfig": config, "Endpoint": jr.endpoint(spec, name)}


def promote_check(spec: PipelineSpec, env: Environment, run: Run, client, *, version: dict, asked: dict) -> int:
    """The smoke test: the endpoint answers the version's test rows as its own batch transform did (``transform/ds=<its ds>/test/``)."""
    from gated_ml.stages.deployment import check_agreement
    from gated_ml.stages.transform import output_uris

    own = _run_of(version)
    outputs = output_uris(jr.transform_job(spec, env, own, version["model_name"], "test"))
    if not outputs:
        raise StageError(f"version {version['version']} has no batch-transform test outputs under {jr.locations(spec, env).transform(version['ds'])}test/")
    return check_agreement(spec, env, own, client, outputs)


def promote_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, *, version: dict, asked: dict) -> dict:
    """The endpoint serves the version: crown it, recording the action in the deployment history."""
    config = request["EndpointConfig"]["EndpointConfigName"]
    registry.crown(spec, env, version["version"], config, action=asked["action"], by=asked["by"], reason=asked["reason"])
    return {"endpoint_name": request["Endpoint"]["EndpointName"], "endpoint_config": config, "url": (describe or {}).get("Url"), "version": version["version"]}


PROMOTE = Step("deploy_endpoint", promote_request, promote_result, check=promote_check)
