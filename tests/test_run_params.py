"""The training DAG's trigger-form Params: refused out of range by the form's schema and by the DAG, honoured by every stage."""

import dataclasses
import datetime as dt
import json

import pandas as pd
import pytest

from gated_ml import job_requests as jr
from gated_ml import run_params, storage
from gated_ml.errors import InvalidParams, SkipDeployment
from gated_ml.job_requests import Run
from gated_ml.stages import data, deployment, training

CODE = {"sourcedir_uri": "s3://gated-ml-local/vertebral_column/code/abc/sourcedir.tar.gz"}
NAMES = {"skip_tuning", "max_tuning_jobs", "deploy", "threshold_roc_auc", "threshold_f1", "window_batches"}
BAD = [
    ("max_tuning_jobs", 0, "an integer from 1 to 500"),
    ("max_tuning_jobs", 501, "an integer from 1 to 500"),
    ("max_tuning_jobs", 2.5, "an integer from 1 to 500"),
    ("max_tuning_jobs", "3", "an integer from 1 to 500"),
    ("threshold_roc_auc", 1.01, "a number from 0 to 1"),
    ("threshold_f1", -0.1, "a number from 0 to 1"),
    ("window_batches", 0, '"all" or an integer >= 1'),
    ("window_batches", "last", '"all" or an integer >= 1'),
    ("window_batches", "3", '"all" or an integer >= 1'),
    ("skip_tuning", "yes", "true or false"),
    ("deploy", 0, "true or false"),
]


def _run(**params) -> Run:
    return Run(logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC), try_number=1, params=params)


@pytest.fixture(scope="module")
def dag(spec):
    from gated_ml.dag_factory import build_dag

    return build_dag(spec)


# --- the form: Airflow's own Param validation ------------------------------------------------
def test_the_dag_has_a_param_per_setting_with_the_specs_defaults_titles_and_descriptions(dag, spec):
    assert set(dag.params) == NAMES
    assert dag.params.validate() == {
        "skip_tuning": False,
        "max_tuning_jobs": spec.tuning.max_jobs,
        "deploy": True,
        "threshold_roc_auc": 0.85,
        "threshold_f1": 0.75,
        "window_batches": "all",
    }
    for name in NAMES:
        param = dag.params.get_param(name)
        assert param.description and param.schema["title"] and param.schema["section"], name


@pytest.mark.parametrize(("name", "value", "_"), BAD)
def test_the_form_schema_refuses_a_value_out_of_range(dag, name, value, _):
    from airflow.sdk import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.params.get_param(name).__copy__().resolve(value)
    merged = ParamsDict({k: dag.params.get_param(k).__copy__() for k in dag.params})
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}"):
        merged[name] = value  # what a trigger's conf does to the DAG's params


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_tuning_jobs", 1), ("max_tuning_jobs", 500), ("threshold_roc_auc", 0), ("threshold_f1", 1), ("window_batches", 1), ("window_batches", "all")],
)
def test_the_form_schema_accepts_the_bounds(dag, name, value):
    assert dag.params.get_param(name).__copy__().resolve(value) == value


def test_threshold_params_are_bounded_by_what_the_metric_can_be(spec):
    from gated_ml.spec import load_pipeline

    wine = load_pipeline("wine_quality")
    schemas = {n: d.schema for n, d in run_params.definitions(wine).items()}
    assert schemas["threshold_rmse"] == {"type": "number", "minimum": 0}  # an error: no upper bound
    assert schemas["threshold_within_1_0"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert run_params.threshold_bounds("r2") == (None, 1)
    impossible = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update={"thresholds": {"roc_auc": 1.2}})})
    with pytest.raises(ValueError, match=r"evaluation.thresholds.roc_auc is 1.2; a roc_auc threshold must be a number from 0 to 1"):
        run_params.definitions(impossible)


# --- the DAG: check_params ---------------------------------------------------------------------
@pytest.mark.parametrize(("name", "value", "allowed"), BAD)
def test_the_dag_refuses_a_bad_value_naming_the_param_value_and_range(spec, name, value, allowed):
    with pytest.raises(InvalidParams) as refused:
        run_params.resolve(spec, {name: value})
    assert f"param {name} = {json.dumps(value)} is refused: it must be {allowed}" in str(refused.value)


def test_the_dag_refuses_a_param_no_form_has(spec):
    with pytest.raises(InvalidParams, match=r"unknown params \['max_tuning_job'\].*this DAG's params are"):
        run_params.resolve(spec, {"max_tuning_job": 3})
    # a stage run by another DAG (scoring, registry actions) carries that DAG's params: the spec's run, unchanged
    assert run_params.effective_spec(spec, _run(version=3)) is spec
    with pytest.raises(InvalidParams, match="threshold_f1 = 7"):  # a training param out of range is refused by every stage
        run_params.effective_spec(spec, _run(version=3, threshold_f1=7))


def test_check_params_is_the_first_task_and_everything_waits_for_it(dag):
    assert [t.task_id for t in dag.roots] == ["check_params"]
    assert len(dag.get_task("check_params").get_flat_relative_ids(upstream=False)) == len(dag.tasks) - 1


def test_check_params_records_the_params_and_the_overrides(lake, spec, env):
    run = _run(max_tuning_jobs=3, deploy=False, window_batches="all")
    document = run_params.record(spec, env, run, "manual__2026-11-01")
    stored = json.loads(storage.read_text(jr.locations(spec, env).runs(run.ds) + "params.json"))
    assert stored == document
    assert stored["dag_run_id"] == "manual__2026-11-01"
    assert stored["params"] == {**run_params.resolve(spec, {}), "max_tuning_jobs": 3, "deploy": False}
    assert stored["overrides"] == {"max_tuning_jobs": 3, "deploy": False}  # window_batches equals the spec's


def test_the_check_params_task_records_its_dag_run(monkeypatch, lake, dag, spec, env):
    from gated_ml import dag_factory

    monkeypatch.setattr(dag_factory, "current_run", lambda: _run(skip_tuning=True))
    document = dag.get_task("check_params").python_callable(run_id="manual__2026-11-01")  # Airflow passes run_id from the context
    assert document["dag_run_id"] == "manual__2026-11-01" and document["overrides"] == {"skip_tuning": True}
    assert json.loads(storage.read_text(jr.locations(spec, env).runs("2026-11-01") + "params.json")) == document


def test_check_params_writes_nothing_for_a_refused_run(lake, spec, env):
    run = _run(threshold_f1=2)
    with pytest.raises(InvalidParams, match="threshold_f1 = 2"):
        run_params.record(spec, env, run, "manual__x")
    assert not storage.exists(jr.locations(spec, env).runs(run.ds) + "params.json")


def test_a_bad_conf_fails_check_params_and_runs_nothing_else(airflow_db, lake):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import ParamValidationError

    from conftest import ROOT

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["vertebral_column"]
    with pytest.raises(ParamValidationError, match="max_tuning_jobs"):  # out of range: refused before the run exists, as the form and REST do
        dag.test(logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC), run_conf={"max_tuning_jobs": 0})
    dr = dag.test(logical_date=dt.datetime(2026, 11, 8, tzinfo=dt.UTC), run_conf={"max_tuning_job": 3})  # a name no param has
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "failed"
    assert states.pop("check_params") == "failed"
    assert set(states.values()) <= {"upstream_failed", None}, states


# --- the stages honour the params ---------------------------------------------------------------
def test_effective_spec_without_params_is_the_spec(spec):
    assert run_params.effective_spec(spec, _run()) is spec
    assert run_params.effective_spec(spec, _run(**run_params.resolve(spec, {}))) is spec  # every param at the spec's value


def test_effective_spec_applies_each_override(spec):
    run = _run(max_tuning_jobs=4, threshold_f1=0.6, window_batches=2)
    effective = run_params.effective_spec(spec, run)
    assert (effective.tuning.max_jobs, effective.tuning.max_parallel) == (4, spec.tuning.max_parallel)
    assert effective.evaluation.thresholds == {"roc_auc": 0.85, "f1": 0.6}
    assert effective.window.batches == 2
    assert run_params.effective_spec(effective, run) == effective  # idempotent: a stage may get it twice
    rest = spec.model_dump(exclude={"tuning", "evaluation", "window"})
    assert effective.model_dump(exclude={"tuning", "evaluation", "window"}) == rest


def test_fewer_tuning_jobs_than_the_parallel_limit_lower_it_and_the_request_stays_valid(spec, env):
    effective = run_params.effective_spec(spec, _run(max_tuning_jobs=1))
    request = training.tuning_request(effective, env, _run(max_tuning_jobs=1), CODE)  # validated against botocore
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1}


class _Ran(Exception):
    pass


def _recording_target():
    """The local target with verbs that record their request instead of running a job."""
    from gated_ml.targets.local import LocalTarget

    class Recording(LocalTarget):
        def __init__(self):
            self.requests = {}

        def tune(self, request):
            self.requests["tune"] = request
            raise _Ran

    return Recording()


def test_the_local_target_runs_steps_with_the_run_s_params(spec, env):
    target = _recording_target()
    with pytest.raises(_Ran):
        target.run_step(training.TUNE, spec, env, _run(max_tuning_jobs=3), code=CODE)
    assert target.requests["tune"]["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 3


def test_skip_tuning_sends_no_tuning_job_and_selects_the_training_job(spec, env):
    target = _recording_target()
    assert training.TUNE.optional
    assert training.tuning_request(spec, env, _run(skip_tuning=True), CODE) is None
    assert target.run_step(training.TUNE, spec, env, _run(skip_tuning=True), code=CODE) is None  # the tune verb is never called
    assert "tune" not in target.requests
    trained = {"job_name": "train-job", "model_data": "s3://b/m.tar.gz", "objective": {"name": "validation:logloss", "value": 0.4}, "hyperparameters": {}}
    assert training.select_model(spec, trained, None) == trained


def test_the_aws_target_builds_requests_with_the_run_s_params(monkeypatch, spec, env):
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowSkipException

    from gated_ml.targets import aws

    monkeypatch.setattr(aws.AwsTarget, "environment", lambda self: env)
    with DAG("params_aws", schedule=None):
        tasks = aws.AwsTarget().task(training.TUNE, spec, "tune", code=CODE)
    build = tasks.head.operator.python_callable
    monkeypatch.setattr(aws, "current_run", lambda: _run(max_tuning_jobs=2))
    assert build({"code": CODE})["config"]["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 2
    monkeypatch.setattr(aws, "current_run", lambda: _run(skip_tuning=True))
    with pytest.raises(AirflowSkipException, match="tune: nothing to do"):
        build({"code": CODE})
    assert tasks.output.operator.trigger_rule == "none_failed"  # the result task still runs and gives select_model None


def test_deploy_false_registers_but_skips_deployment_naming_the_param(lake, spec, env):
    evaluation = {"version": 3}
    package = {"approval": "Approved", "model_package_arn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/vertebral-column/3"}
    deployment.check_deployable(spec, env, _run(), evaluation, package)  # the spec's run deploys
    with pytest.raises(SkipDeployment, match="param deploy is false") as skipped:
        deployment.check_deployable(spec, env, _run(deploy=False), evaluation, package)
    assert "version 3 is registered (Approved" in str(skipped.value)
    with pytest.raises(SkipDeployment, match="param deploy is false"):
        deployment.endpoint_request(spec, env, _run(deploy=False), {"model_name": "m"}, evaluation, {}, package)


def test_a_threshold_override_changes_the_model_gate(spec):
    from gated_ml.evaluation import report

    labels = ["Abnormal", "Normal"] * 10
    frame = pd.DataFrame({"label": labels, "prediction": [0.9, 0.2] * 6 + [0.4, 0.6] * 4})
    metrics = report.decide(spec, frame, frame)["metrics"]
    assert metrics["roc_auc"] < 0.85 and report.decide(spec, frame, frame)["decision"] == "Rejected"  # the spec's gate
    below = {"threshold_roc_auc": metrics["roc_auc"] - 0.05, "threshold_f1": metrics["f1"] - 0.05}
    relaxed = run_params.effective_spec(spec, _run(**below))
    assert report.decide(relaxed, frame, frame)["decision"] == "Approved"
    stricter = run_params.effective_spec(spec, _run(**{**below, "threshold_f1": min(1.0, metrics["f1"] + 0.05)}))
    result = report.decide(stricter, frame, frame)
    assert result["decision"] == "Rejected" and [r.split()[0] for r in result["reasons"]] == ["f1"]


def test_a_window_override_changes_the_training_window(lake, spec, env):
    loc = jr.locations(spec, env)
    dates = ["2026-11-01", "2026-11-08", "2026-11-15"]
    for ds in dates:
        storage.write(data.batch_uri(spec, env.bucket, ds), "rows")
        storage.write(loc.quality(ds) + "curated.json", json.dumps({"success": True}))
    run = dataclasses.replace(_run(), logical_date=dt.datetime(2026, 11, 15, tzinfo=dt.UTC))
    assert data.window(run_params.effective_spec(spec, run), env, run)["batches"] == dates
    last_two = dataclasses.replace(run, params={"window_batches": 2})
    window = data.window(run_params.effective_spec(spec, last_two), env, last_two)
    assert window["batches"] == dates[1:] and window["window"] == 2
