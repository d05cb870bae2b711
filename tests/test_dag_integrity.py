"""DAG integrity: every DAG imports cleanly and cheaply, has an owner, retries, tags and docs."""

import datetime as dt
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


ACTIONS = ("review", "promote", "rollback")


def _training_dags(bag):
    from gated_ml.spec import spec_paths

    return [bag.dags[p.stem] for p in spec_paths()]


def test_no_import_errors_and_one_dag_per_spec(bag):
    from gated_ml.spec import spec_paths

    assert bag.import_errors == {}
    stems = {p.stem for p in spec_paths()}
    actions = {f"{s}_{a}_model" for s in stems for a in ACTIONS}
    scoring = {f"{s}_scoring" for s in stems}
    assert actions <= set(bag.dag_ids) and scoring <= set(bag.dag_ids)
    assert set(bag.dag_ids) - actions - scoring == stems


def test_action_dags_are_operations_triggered_by_hand_with_a_form(bag):
    from gated_ml.dag_factory import endpoint_pool
    from gated_ml.spec import load_pipeline

    spec = load_pipeline("vertebral_column")
    for action in ACTIONS:
        dag = bag.dags[f"vertebral_column_{action}_model"]
        assert dag.timetable.__class__.__name__ == "NullTimetable" and set(dag.tags) == {"gated-ml", "operations"} and dag.doc_md
        assert "reason" in dag.params and dag.params.get_param("reason").schema["minLength"] >= 5
        assert next(t.task_id for t in dag.topological_sort()) == "read_request" and dag.task_dict["announce_approved_model"].outlets
        for t in dag.tasks:
            assert t.owner == "ml-platform" and t.retries >= 1, t.task_id
            if t.task_id.startswith("deployment."):
                assert t.pool == endpoint_pool(spec), t.task_id
    assert bag.dags["vertebral_column_review_model"].params.get_param("decision").schema["enum"] == ["Approved", "Rejected"]
    assert bag.dags["vertebral_column_promote_model"].params.get_param("version").schema["minimum"] == 1


def test_dag_properties(bag):
    for dag in _training_dags(bag):
        assert dag.doc_md and "Stages:" in dag.doc_md
        assert "gated-ml" in dag.tags
        assert dag.max_active_runs == 1 and dag.catchup is False  # the shipped specs' settings
        for t in dag.tasks:
            assert t.owner == "ml-platform"
            assert t.retries >= 1, t.task_id
            assert t.retry_delay == dt.timedelta(minutes=1), t.task_id  # the shipped specs' default


def test_every_training_dag_has_the_trigger_form_params_checked_first(bag):
    from gated_ml.spec import load_pipeline, spec_paths

    training = {path.stem for path in spec_paths()}
    assert training <= set(bag.dags)
    for dag_id, dag in ((d, bag.dags[d]) for d in training):
        spec = load_pipeline(dag_id)
        thresholds = {f"threshold_{m}" for m in spec.evaluation.thresholds}
        assert set(dag.params) == {"skip_tuning", "max_tuning_jobs", "deploy", "window_batches", *thresholds}, dag_id
        assert dag.params.validate()["max_tuning_jobs"] == spec.tuning.max_jobs
        assert [t.task_id for t in dag.roots] == ["check_params"], dag_id


def test_the_retry_delay_comes_from_the_spec(spec):
    from gated_ml.dag_factory import build_dag

    dag = build_dag(spec.model_copy(update={"retries": 2, "retry_delay_seconds": 5}))
    assert {(t.retries, t.retry_delay) for t in dag.tasks} == {(2, dt.timedelta(seconds=5))}


def test_no_cycles_and_the_stage_order(bag):
    dag = bag.dags["vertebral_column"]
    order = [t.task_id for t in dag.topological_sort()]  # raises on a cycle
    pos = {t: i for i, t in enumerate(order)}
    chain = [
        "ingest.wait_for_batch",
        "ingest.landing_gate",
        "etl.glue_etl",
        "etl.baseline_settled",
        "etl.curated_gate",
        "features.window_settled",
        "features.split",
        "features.splits_gate",
        "training.tune",
        "training.select_model",
        "batch_transform.transform_input_gate",
        "batch_transform.transform",
        "batch_transform.predictions_gate",
        "evaluate",
        "deployment.deploy_endpoint",
        "deployment.smoke_test_endpoint",
    ]
    assert [pos[t] for t in chain] == sorted(pos[t] for t in chain)
    # a gate is upstream of everything after it: failing it leaves them unrun
    assert "etl.curated_gate" in dag.get_task("features.split").get_flat_relative_ids(upstream=True)
    assert "evaluate" in dag.get_task("deployment.deploy_endpoint").get_flat_relative_ids(upstream=True)
    transform_upstream = dag.get_task("batch_transform.transform").get_flat_relative_ids(upstream=True)
    assert {"batch_transform.transform_input_gate", "batch_transform.create_model"} <= transform_upstream


def test_parsing_imports_nothing_heavy_and_touches_no_network():
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; before = set(sys.modules);"
        f"b = DagBag(dag_folder={str(ROOT / 'dags')!r}); assert not b.import_errors, b.import_errors;"
        "heavy = ['pandas', 'sklearn', 'xgboost', 'great_expectations', 'sagemaker', 'boto3', 'botocore', 'pyspark', 'optuna'];"
        "print(sorted(m for m in heavy if m in sys.modules and m not in before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_scoring_dag_gates_before_it_scores_and_publishes_last(bag):
    from airflow.sdk import AssetOrTimeSchedule

    dag = bag.dags["vertebral_column_scoring"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order == ["choose_batch", "wait_for_batch", "approved_model", "scoring_gate", "score", "predictions_gate", "publish_predictions"]
    for later, earlier in [("score", "scoring_gate"), ("score", "approved_model"), ("publish_predictions", "predictions_gate")]:
        assert earlier in dag.get_task(later).get_flat_relative_ids(upstream=True), (later, earlier)
    assert all(dag.get_task(t).on_failure_callback for t in ("wait_for_batch", "scoring_gate", "predictions_gate"))  # alerts
    assert "gated-ml" in dag.tags and "scoring" in dag.tags and "Stages:" in dag.doc_md and dag.max_active_runs == 1 and dag.catchup is False
    assert all(t.owner == "ml-platform" and t.retries >= 1 for t in dag.tasks)
    assert isinstance(dag.timetable, AssetOrTimeSchedule)  # the spec's cron OR a newly approved model
    assert [a.name for a in dag.timetable.asset_condition.objects] == ["vertebral_column.approved_model"]


def test_the_training_dag_emits_the_curated_asset_after_the_catalog_partition(bag):
    dag = bag.dags["vertebral_column"]
    emit = dag.get_task("etl.curated_asset")
    assert [o.name for o in emit.outlets] == ["vertebral_column.curated"]
    assert {"etl.catalog_partition", "etl.curated_gate"} <= emit.get_flat_relative_ids(upstream=True)


def test_aws_target_uses_the_provider_operators(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerEndpointOperator,
        SageMakerModelOperator,
        SageMakerRegisterModelVersionOperator,
        SageMakerTrainingOperator,
        SageMakerTransformOperator,
        SageMakerTuningOperator,
    )

    monkeypatch.setenv("AIRFLOW__GATED_ML__TARGET", "aws")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["vertebral_column"]
    kinds = {
        "etl.glue_etl": GlueJobOperator,
        "training.train": SageMakerTrainingOperator,
        "training.tune": SageMakerTuningOperator,
        "batch_transform.create_model": SageMakerModelOperator,
        "batch_transform.transform": SageMakerTransformOperator,
        "deployment.deploy_endpoint": SageMakerEndpointOperator,
        "deployment.register_model_version": SageMakerRegisterModelVersionOperator,
    }
    for task_id, kind in kinds.items():
        assert isinstance(dag.get_task(task_id), kind), task_id
    assert isinstance(bag.dags["vertebral_column_scoring"].get_task("score"), SageMakerTransformOperator)
    train = dag.get_task("training.train")
    assert train.deferrable is True and train.do_xcom_push is False  # deferrable by default, slim XComs
    assert "training.train_request" in train.upstream_task_ids  # config built at run time, not at parse


def test_shared_state_is_guarded_by_pools_the_setup_creates(bag, airflow_db):
    """Deployments of a pipeline run one at a time; ETL runs at most as many at once as the Glue job allows."""
    import os

    from gated_ml.dag_factory import endpoint_pool, etl_pool, pools
    from gated_ml.spec import load_pipeline

    spec = load_pipeline("vertebral_column")
    dag = bag.dags["vertebral_column"]
    for t in dag.tasks:
        if t.task_id.startswith("deployment."):
            assert t.pool == endpoint_pool(spec), t.task_id
        if t.task_id.startswith("etl."):
            assert t.pool == etl_pool(spec), t.task_id
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    out = subprocess.run([sys.executable, "-m", "gated_ml.cli", "setup"], capture_output=True, text=True, check=True, env=env)
    from airflow.models.pool import Pool

    for name, n in pools(spec).items():
        assert Pool.get_pool(name).slots == n and name in out.stdout
