"""The target interface: the DAG factory builds through it alone, and each target keeps its contract."""

import threading

import pytest

from conftest import ROOT
from gated_ml.errors import Fault, GateFailed, SkipDeployment, airflow_outcome
from gated_ml.steps import Step
from gated_ml.targets import VERBS, Target


class RecordingTarget(Target):
    """A third target: it builds placeholder tasks and records which steps the factory asked for."""

    name = "recording"

    def __init__(self):
        self.steps = {}

    def environment(self):
        raise AssertionError("the factory must not ask for the environment at parse time")

    def runtime_client(self, endpoint):
        raise AssertionError("the factory must not make a client at parse time")

    def registry_client(self):
        raise AssertionError("the factory must not make a client at parse time")

    def arrival_sensor(self, spec, task_id):
        from airflow.providers.standard.operators.empty import EmptyOperator

        self.steps[task_id] = ("arrival", [])
        return EmptyOperator(task_id=task_id)

    def task(self, step, spec, task_id, **inputs):
        from airflow.providers.standard.operators.empty import EmptyOperator

        from gated_ml.targets.base import StepTasks

        self.steps[task_id] = (step.verb, sorted(inputs))
        op = EmptyOperator(task_id=task_id)
        return StepTasks(head=op, output=op.output)


def test_the_factory_builds_every_verb_through_the_interface_alone(monkeypatch, spec):
    from gated_ml import dag_factory

    target = RecordingTarget()
    monkeypatch.setattr(dag_factory, "configured", lambda: target)
    dag = dag_factory.build_dag(spec)
    assert {verb for verb, _ in target.steps.values()} == {*VERBS, "arrival"}
    assert target.steps["train"] == ("train", ["code"]) and target.steps["transform_champion"] == ("transform", ["model"])
    assert target.steps["deploy_endpoint"] == ("deploy_endpoint", ["evaluation", "model", "package", "transformed"])
    order = [t.task_id for t in dag.topological_sort()]
    assert order.index("etl.glue_etl") < order.index("etl.curated_gate") < order.index("features.split") < order.index("training.train")
    assert order.index("batch_transform.transform") < order.index("evaluate") < order.index("deployment.deploy_endpoint")


def test_aws_target_puts_every_operator_between_its_request_and_result(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__GATED_ML__TARGET", "aws")
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["vertebral_column"]
    for group, step in [
        ("etl", "glue_etl"),
        ("etl", "catalog_partition"),
        ("training", "train"),
        ("training", "tune"),
        ("batch_transform", "create_model"),
        ("batch_transform", "transform"),
        ("batch_transform", "transform_champion"),
        ("deployment", "deploy_endpoint"),
        ("deployment", "register_model_version"),
    ]:
        operator = dag.get_task(f"{group}.{step}")
        upstream = operator.get_flat_relative_ids(upstream=True)
        assert f"{group}.{step}_request" in upstream, step
        assert f"{group}.{step}" in dag.get_task(f"{group}.{step}_result").upstream_task_ids, step
        assert type(operator).__module__.startswith(("airflow.providers.amazon", "gated_ml.targets.aws_operators")), step
    # the champion's transform is optional: with no champion its result is None and evaluation still runs
    assert dag.get_task("batch_transform.transform_champion_result").trigger_rule == "none_failed"
    assert dag.get_task("deployment.deploy_endpoint_result").trigger_rule == "all_success"  # a skipped deploy skips the smoke test
    # the deploy operator smoke-tests (and rolls back) before its result task, the only one that crowns, runs
    from gated_ml.targets.aws_operators import DeployEndpointOperator, GlueEtlOperator

    deploy = dag.get_task("deployment.deploy_endpoint")
    assert isinstance(deploy, DeployEndpointOperator) and callable(deploy.smoke_test)
    assert deploy.smoke_inputs.operator.task_id == "deployment.deploy_endpoint_request"
    assert isinstance(dag.get_task("etl.glue_etl"), GlueEtlOperator)


def test_a_local_optional_step_with_nothing_to_do_never_calls_its_verb(spec, env, run):
    from gated_ml.targets.local import LocalTarget

    calls = []

    class Probe(LocalTarget):
        def transform(self, request):
            calls.append(request)

    step = Step("transform", lambda spec, env, run, **_: None, lambda *a, **k: {"never": True}, optional=True)
    assert Probe().run_step(step, spec, env, run, model={"model_name": "m"}) is None and calls == []


def test_airflow_outcome_maps_refusals_skips_and_faults():
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    def raising(exc):
        def fn():
            raise exc

        return airflow_outcome(fn)

    with pytest.raises(AirflowFailException, match="null"):  # not retried: the data will not change
        raising(GateFailed("column 'x': 30% null"))()
    with pytest.raises(AirflowSkipException, match="pending"):
        raising(SkipDeployment("version 3 is pending approval"))()
    with pytest.raises(Fault):  # retried by Airflow
        raising(Fault("model server did not start"))()


# --- the local control plane's catalog and model registry ------------------------------------
def test_local_catalog_creates_the_table_once_and_keeps_partitions(lake, spec, env, run):
    import datetime as dt

    from gated_ml import job_requests as jr
    from gated_ml.local.catalog import create_partition
    from gated_ml.local.control_plane import ControlPlane

    table = jr.catalog_table(spec, env)
    first = create_partition(table, jr.catalog_partition(spec, env, run))["Partition"]
    assert first["Values"] == [run.ds] and first["StorageDescriptor"]["Location"].endswith(f"/curated/ds={run.ds}/")
    assert create_partition(table, jr.catalog_partition(spec, env, run))["Partition"] == first  # if_exists: skip
    later = jr.Run(dt.datetime(2026, 11, 8, tzinfo=dt.UTC), 1)
    create_partition(table, jr.catalog_partition(spec, env, later))
    assert len(list((ControlPlane().root / "glue-partitions").glob("*.json"))) == 2
    assert len(list((ControlPlane().root / "glue-tables").glob("*.json"))) == 1


def _package(spec, env, run, version):
    from gated_ml import job_requests as jr

    return jr.model_package(spec, env, run, f"s3://{env.bucket}/m/v{version}/model.tar.gz", f"s3://{env.bucket}/code/x/sourcedir.tar.gz", version, "Approved")


def test_local_model_registry_numbers_versions_and_registers_a_retry_once(lake, spec, env, run):
    from gated_ml.local.model_registry import create_model_package, packages

    one = create_model_package(_package(spec, env, run, 1))
    assert one["ModelPackageVersion"] == 1 and one["ModelPackageStatus"] == "Completed"
    assert one["InferenceSpecification"]["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert create_model_package(_package(spec, env, run, 1)) == one  # the same request again: the same version
    assert create_model_package(_package(spec, env, run, 2))["ModelPackageVersion"] == 2
    assert [p["ModelPackageVersion"] for p in packages(spec.slug)] == [1, 2]


def test_local_model_registry_gives_concurrent_registrations_distinct_versions(lake, spec, env, run):
    from gated_ml.local.model_registry import create_model_package, packages

    results, start = [], threading.Barrier(6)

    def register(v):
        start.wait()
        results.append(create_model_package(_package(spec, env, run, v))["ModelPackageVersion"])

    threads = [threading.Thread(target=register, args=(v,)) for v in range(10, 16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    assert len(packages(spec.slug)) == 6
