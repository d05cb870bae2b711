"""Approvals, promotion and rollback: the action DAGs through ``dag.test()`` on the local target, and the aws path's registry calls.

Two real models (``modelkit``: different hyperparameters, so they answer differently), each
with its batch-transform test outputs, its lake version record and its model package built
as the training DAG builds it (``stages.deployment.package_request``), both pending approval.
Each test starts from a copy of that lake.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from gated_ml import job_requests as jr
from gated_ml.evaluation import registry
from gated_ml.local.model_registry import ModelRegistryClient
from gated_ml.stages import approvals, deployment, transform
from gated_ml.stages.approvals import ActionRefused, ActionRequest
from gated_ml.targets.local import LocalTarget
from modelkit import train_and_register

PIPELINE = "vertebral_column"
DATES = ("2026-11-01", "2026-11-08")
SHALLOW = {"num_round": 3, "max_depth": 1, "eta": 0.3}  # the second model: another model, other answers


def _run(ds: str) -> jr.Run:
    return jr.Run(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC), 1)


def _version(spec, env, ds: str, number: int, hyperparameters: dict | None) -> None:
    run = _run(ds)
    if hyperparameters:
        spec = spec.model_copy(update={"training": spec.training.model_copy(update={"hyperparameters": {**spec.training.hyperparameters, **hyperparameters}})})
    model, _ = train_and_register(spec, env, run)
    LocalTarget().run_step(transform.TRANSFORM_TEST, spec, env, run, model={"model_name": model["ModelName"]})
    model_data = model["PrimaryContainer"]["ModelDataUrl"]
    entry = registry.register(spec, env, {"model_name": model["ModelName"], "model_data": model_data, "ds": ds, "decision": "PendingManualApproval"})
    assert entry["version"] == number
    chosen, evaluation = {"model_data": model_data, "job_name": run.name(spec, "train")}, {"version": number, "decision": "PendingManualApproval"}
    code = {"sourcedir_uri": model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]}
    ModelRegistryClient().create_model_package(**deployment.package_request(spec, env, run, chosen, evaluation, code))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, spec):
    """A lake holding versions 1 and 2 (two models, both PendingManualApproval), built once."""
    root = tmp_path_factory.mktemp("pristine") / "lake"
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__GATED_ML__LAKE_ROOT", str(root))
    env = LocalTarget().environment()
    _version(spec, env, DATES[0], 1, None)
    _version(spec, env, DATES[1], 2, SHALLOW)
    mp.undo()
    return root


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml.spec import PROJECT_ROOT

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags


@pytest.fixture
def world(pristine, lake, dags):
    """This test's copy of the two-version lake; the ``lake`` fixture stops the endpoints it starts."""
    shutil.copytree(pristine, lake, dirs_exist_ok=True)
    return {"dags": dags, "env": LocalTarget().environment(), "client": ModelRegistryClient()}


def _trigger(world, action: str, **conf):
    dr = world["dags"][f"{PIPELINE}_{action}_model"].test(run_conf=conf)
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _package(spec, client, number: int) -> dict:
    return approvals.package_of(spec, client, number)


def _approve_directly(spec, world, number: int) -> None:
    approvals.set_approval(spec, world["env"], world["client"], number, "Approved", action="approve", by="test", reason="set-up of the test")


def _events(dr) -> list[dict]:
    """The asset events the DAG run emitted, as Airflow recorded them."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.query(AssetEvent).filter(AssetEvent.source_dag_id == dr.dag_id, AssetEvent.source_run_id == dr.run_id).order_by(AssetEvent.id).all()
        return [{"asset": e.asset.name, **e.extra} for e in found]


def _answers(spec, env, ds: str) -> tuple[list[str], list[str]]:
    """The endpoint's answers to the first test rows through a stock boto3 client, and ds's version's batch-transform predictions of them."""
    from gated_ml import storage
    from gated_ml.local.hosting import describe_endpoint, runtime_client
    from gated_ml.stages.data import test_records

    rows = test_records(spec, env, _run(ds))[:5]
    url = describe_endpoint(jr.endpoint_name(spec))["Url"]
    answer = deployment.invoke(runtime_client(url), jr.endpoint_name(spec), "".join(r.split(",", 1)[1] + "\n" for r in rows))
    transformed = storage.read_text(jr.locations(spec, env).transform(ds) + "test/test.csv.out")
    batch = [line.rsplit(",", 1)[1] for line in transformed.splitlines() if line.strip()][: len(rows)]
    return [a for a in answer.splitlines() if a.strip()], batch


# --- review -------------------------------------------------------------------------------------
@pytest.mark.slow  # trains two models, starts model servers
def test_approve_updates_the_registry_the_history_and_announces_the_approved_model(world, spec):
    dr, states = _trigger(world, "review", version=1, decision="Approved", reason="metrics reviewed with the clinic")
    assert dr.state == "success", states

    package = _package(spec, world["client"], 1)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"].endswith(": metrics reviewed with the clinic")
    who = package["ApprovalDescription"].split(":", 1)[0]
    assert who.endswith("(cli)")  # dag.test names no Airflow user: the OS user, marked
    history = registry.version(spec, world["env"], 1)["history"]
    assert [(h["action"], h["by"], h["approval_before"], h["approval_after"]) for h in history] == [("approve", who, "PendingManualApproval", "Approved")]
    assert registry.approved(spec, world["env"], world["client"])["version"] == 1
    assert _events(dr) == [{"asset": f"{PIPELINE}.approved_model", "version": 1, "action": "approve", "by": who, "reason": "metrics reviewed with the clinic"}]


@pytest.mark.slow  # trains two models, starts model servers
def test_rejecting_the_serving_version_says_it_still_serves(world, spec):
    _approve_directly(spec, world, 1)
    registry.crown(spec, world["env"], 1, "vertebral-column-epc-20261101-1")  # version 1 serves (no endpoint needed to say so)
    answer = approvals.review(
        spec, world["env"], world["client"], ActionRequest("reject", "ana", "drifts on the new scanner", "d/r", version=1, decision="Rejected")
    )
    assert _package(spec, world["client"], 1)["ModelApprovalStatus"] == "Rejected"
    assert "still serves" in answer["message"] and "make rollback" in answer["message"]
    assert registry.champion(spec, world["env"])["version"] == 1  # a rejection is not a rollback


@pytest.mark.slow  # trains two models, starts model servers
def test_reviewing_an_unknown_version_fails_and_changes_nothing(world, spec, capfd):
    before = _package(spec, world["client"], 1)
    dr, states = _trigger(world, "review", version=9, decision="Approved", reason="looks fine to me")
    assert dr.state == "failed"
    assert states["review_version"] == "failed" and states["announce_approved_model"] == "upstream_failed"
    assert "registry version 9 of vertebral_column does not exist (versions: 1, 2)" in "".join(capfd.readouterr())
    assert _package(spec, world["client"], 1) == before and "history" not in registry.version(spec, world["env"], 1)
    assert _events(dr) == []


@pytest.mark.slow  # trains two models, starts model servers
@pytest.mark.parametrize(
    "conf",
    [
        {"version": 1, "decision": "Approved"},
        {"version": 1, "decision": "Approved", "reason": "ok"},
        {"version": 0, "decision": "Approved", "reason": "fine reason"},
    ],
)
def test_the_form_refuses_a_missing_reason_or_a_bad_version(world, spec, conf):
    from airflow.sdk.exceptions import ParamValidationError

    before = _package(spec, world["client"], 1)
    with pytest.raises(ParamValidationError, match=r"param (reason|version)"):
        _trigger(world, "review", **conf)
    assert _package(spec, world["client"], 1) == before and "history" not in registry.version(spec, world["env"], 1)


def test_a_missing_reason_is_refused_by_the_action_itself():
    with pytest.raises(ActionRefused, match="reason is required"):
        ActionRequest("approve", "ana", "", "d/r", version=1, decision="Approved")
    with pytest.raises(ActionRefused, match="version must be"):
        ActionRequest("approve", "ana", "a good reason", "d/r", version=0, decision="Approved")
    with pytest.raises(ActionRefused, match="decision must be one of"):
        ActionRequest("approve", "ana", "a good reason", "d/r", version=1, decision="Maybe")


# --- promote and roll back ----------------------------------------------------------------------------
@pytest.mark.slow  # trains two models, starts model servers
def test_promote_then_rollback_change_what_serves_and_what_the_registry_says(world, spec, capfd):
    env, client = world["env"], world["client"]
    dr, states = _trigger(world, "promote", version=2, reason="shallow model wins on recall")
    assert dr.state == "failed" and states["check_approved"] == "failed" and states["deployment.deploy_version"] == "upstream_failed"
    assert _events(dr) == []
    assert "approve it first: make approve PIPELINE=vertebral_column VERSION=2" in "".join(capfd.readouterr())
    assert registry.champion(spec, env) is None

    _approve_directly(spec, world, 1)
    _approve_directly(spec, world, 2)
    dr, states = _trigger(world, "promote", version=1, reason="first model to serve")
    assert dr.state == "success", states
    assert [(e["version"], e["action"]) for e in _events(dr)] == [(2, "promote")]  # the approved model is the newest Approved, not the one promoted
    answers, batch = _answers(spec, env, DATES[0])
    assert answers == batch  # version 1 serves, answering as its batch transform did
    first_config = registry.champion(spec, env)["endpoint_config"]
    assert registry.champion(spec, env)["version"] == 1

    dr, states = _trigger(world, "promote", version=2, reason="shallow model wins on recall")
    assert dr.state == "success", states
    assert [(e["version"], e["action"]) for e in _events(dr)] == [(2, "promote")]
    answers_v2, batch_v2 = _answers(spec, env, DATES[1])  # the same test rows (both versions split the bundled data alike)
    assert answers_v2 == batch_v2 and answers_v2 != batch  # version 2 serves: the answer changed
    assert registry.champion(spec, env)["version"] == 2
    assert registry.champion(spec, env)["endpoint_config"] != first_config

    dr, states = _trigger(world, "rollback", reason="recall dropped in production")
    assert dr.state == "success", states
    assert registry.champion(spec, env)["version"] == 1
    assert _answers(spec, env, DATES[0])[0] == batch  # version 1 answers again
    rolled = _package(spec, client, 2)
    assert rolled["ModelApprovalStatus"] == "Rejected" and "rolled back by" in rolled["ApprovalDescription"]
    assert registry.version(spec, env, 2)["history"][-1]["action"] == "rollback"
    assert [(d["version"], d["action"]) for d in registry.deployments(spec, env)] == [(1, "promote"), (2, "promote"), (1, "rollback")]
    assert len({d["endpoint_config"] for d in registry.deployments(spec, env)}) == 3  # one config per action run
    assert [(e["version"], e["action"]) for e in _events(dr)] == [(1, "rollback")]  # version 2, rejected, is no longer the approved model

    # the only other version that served is Rejected now: a second rollback is refused and changes nothing
    dr, states = _trigger(world, "rollback", reason="try once more")
    assert dr.state == "failed" and states["deployment.deploy_previous"] == "upstream_failed"
    assert "cannot roll back vertebral_column: version 1 serves and earlier deployed versions [2] are no longer Approved" in "".join(capfd.readouterr())
    assert registry.champion(spec, env)["version"] == 1 and _package(spec, client, 1)["ModelApprovalStatus"] == "Approved"


@pytest.mark.slow  # trains two models, starts model servers
def test_rollback_with_nothing_serving_is_refused(world, spec):
    with pytest.raises(ActionRefused, match="nothing serves"):
        approvals.rollback_plan(spec, world["env"], world["client"])


def test_action_endpoint_configs_are_unique_per_action_run(spec):
    from gated_ml import naming

    a = naming.action_name(spec.slug, "promote", 3, "vertebral_column_promote_model/manual__2026-11-25T10:00:00+00:00", 1)
    b = naming.action_name(spec.slug, "promote", 3, "vertebral_column_promote_model/manual__2026-11-25T10:05:00+00:00", 1)
    assert a != b and a.endswith("-1") and naming.NAME_PATTERN.match(a)
    assert naming.date_of(a) is None  # never compared with training runs' dates
    assert naming.for_try(a, 2).endswith("-2")
    assert len(naming.action_name("p" * 80, "rollback", 12345, "k", 1)) <= naming.MAX_LEN


# --- the aws path: SageMaker's Model Registry through boto3 (moto in process) -------------------------------------
def test_review_acts_on_sagemakers_model_registry_through_boto3(lake, spec, env, run, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    registry.register(spec, env, {"model_name": "m1", "model_data": "s3://b/m.tar.gz", "ds": run.ds, "decision": "PendingManualApproval"})
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        client.create_model_package_group(ModelPackageGroupName=spec.slug)
        request = deployment.package_request(
            spec,
            env,
            run,
            {"model_data": "s3://b/m.tar.gz", "job_name": "j"},
            {"version": 1, "decision": "PendingManualApproval"},
            {"sourcedir_uri": "s3://b/c.tar.gz"},
        )
        request.pop("ClientToken", None)
        arn = client.create_model_package(**request)["ModelPackageArn"]

        for decision in ("Approved", "Rejected"):
            asked = ActionRequest(approvals.ACTION_OF[decision], "ana", f"{decision} after review", "d/r", version=1, decision=decision)
            approvals.review(spec, env, client, asked)
            described = client.describe_model_package(ModelPackageName=arn)
            assert described["ModelApprovalStatus"] == decision
            assert described["ApprovalDescription"] == f"ana: {decision} after review"
        assert registry.approved(spec, env, client) is None  # rejected last
        assert [h["approval_after"] for h in json.loads(json.dumps(registry.version(spec, env, 1)["history"]))] == ["Approved", "Rejected"]


@pytest.mark.slow  # trains two models, starts model servers
def test_the_training_dag_announces_only_an_approved_registration(world, spec):
    from gated_ml.errors import Skip

    env, client = world["env"], world["client"]
    pending = {"approval": _package(spec, client, 2)["ModelApprovalStatus"]}
    with pytest.raises(Skip, match="PendingManualApproval"):
        approvals.registered_announcement(spec, env, client, pending, "vertebral_column/scheduled__2026-11-08")
    _approve_directly(spec, world, 2)
    extra = approvals.registered_announcement(spec, env, client, {"approval": "Approved"}, "vertebral_column/scheduled__2026-11-08")
    assert extra == {"version": 2, "action": "registered", "by": "vertebral_column/scheduled__2026-11-08", "reason": "the model gate approved the model"}


def test_who_is_the_triggering_user_or_the_cli_user():
    assert approvals.triggered_by("ana.ops", "root") == "ana.ops"  # a trigger from the UI or the REST API
    assert approvals.triggered_by("dag_test", "ana") == "ana (cli)"  # dag.test, as the CLI runs actions, names no user
    assert approvals.triggered_by(None, "ana") == "ana (cli)"
