"""Pipeline specs are validated on load, with messages naming the file and the field."""

import pytest

from conftest import ROOT, write_spec
from gated_ml.spec import SpecError, load_spec

GOOD = (ROOT / "include" / "pipelines" / "vertebral_column.yaml").read_text()


def test_bundled_spec_loads(spec):
    assert spec.problem_type == "binary_classification"
    assert spec.label_classes == ["Normal", "Abnormal"]  # positive class encoded 1
    assert len(spec.feature_columns) == 6


@pytest.mark.parametrize(
    "old, new, field, hint",
    [
        ("problem_type: binary_classification", "problem_type: clustering", "problem_type", "binary_classification"),
        ("  column: class\n", "  column: label\n", "(top level)", "not one of the columns"),
        ("seed: 7}", "seed: 7, shuffle: true}", "split.shuffle", "unknown field"),
        ("train: 0.8,", "train: 0.9,", "split", "sum to 1"),
        ("{name: pelvic_tilt, type: double}", "{name: pelvic_tilt, type: float}", "columns.1.type", "double"),
        ("scaling: Logarithmic}", "scaling: Exponential}", "tuning.ranges.eta.continuous.scaling", "Logarithmic"),
        ("max_depth: {type: integer, min: 2, max: 6}", "max_depth: {type: integer, min: 6, max: 2}", "tuning.ranges", "must be below max"),
        ("  positive_class: Abnormal", "  positive_class: Sick", "(top level)", "positive_class"),
        # metric names: every one must be a metric this problem type produces
        ("    roc_auc: 0.85", "    auc: 0.85", "evaluation.thresholds.auc", "the evaluation name of 'auc' is 'roc_auc'"),
        ("    roc_auc: 0.85", "    rocauc: 0.85", "evaluation.thresholds.rocauc", "use one of ['roc_auc', 'pr_auc'"),
        ("    roc_auc: 0.85", "    rmse: 0.85", "evaluation.thresholds.rmse", "not an evaluation metric of binary_classification"),
        (
            'objective_metric: "validation:logloss"',
            'objective_metric: "validation:roc_auc"',
            "tuning.objective_metric",
            "the training script reports it as ['auc']",
        ),
        ('objective_metric: "validation:logloss"', 'objective_metric: "valid:logloss"', "tuning.objective_metric", "'validation:logloss'"),
        ("objective_type: Minimize", "objective_type: Maximize", "tuning.objective_type", "better when lower; use Minimize"),
        ("  decision_threshold: 0.5", "  decision_threshold: 0.5\n  champion_metric: macro_f1", "evaluation.champion_metric", "use one of"),
        ("retries: 1\n", "retries: 1\nretry_delay_seconds: -5\n", "retry_delay_seconds", "greater than or equal to 0"),
    ],
)
def test_invalid_spec_names_file_field_and_allowed(tmp_path, old, new, field, hint):
    assert old in GOOD
    path = write_spec(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg
    assert field in msg
    assert hint in msg


def test_spec_name_must_match_file(tmp_path):
    path = write_spec(tmp_path, GOOD, name="other_name")
    with pytest.raises(SpecError, match="must equal the file name 'other_name'"):
        load_spec(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(write_spec(tmp_path, "name: [unclosed"))
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_invalid_spec_fails_dag_parsing_with_its_message(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    write_spec(tmp_path / "specs", GOOD.replace("problem_type: binary_classification", "problem_type: clustering"))
    monkeypatch.setenv("AIRFLOW__GATED_ML__SPEC_DIR", str(tmp_path / "specs"))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.dags
    (error,) = bag.import_errors.values()
    assert "vertebral_column.yaml" in error and "problem_type" in error and "clustering" in error


def test_one_bad_spec_breaks_only_its_own_dag(tmp_path, monkeypatch):
    """Two bad specs among good ones: both are named in the import error, every good pipeline's DAG loads."""
    from airflow.dag_processing.dagbag import DagBag

    specs = tmp_path / "specs"
    for good in ("wine_quality", "car_evaluation"):
        write_spec(specs, (ROOT / "include" / "pipelines" / f"{good}.yaml").read_text(), name=good)
    write_spec(specs, GOOD.replace("    roc_auc: 0.85", "    auc: 0.85"))
    write_spec(specs, "name: broken\ndescription: [unclosed", name="broken")
    monkeypatch.setenv("AIRFLOW__GATED_ML__SPEC_DIR", str(specs))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    good = ("wine_quality", "car_evaluation")  # each with its action DAGs and its scoring DAG; a bad spec has none
    assert set(bag.dag_ids) == {f"{p}{dag}" for p in good for dag in ("", "_review_model", "_promote_model", "_rollback_model", "_scoring")}
    (error,) = bag.import_errors.values()
    assert "vertebral_column.yaml" in error and "evaluation.thresholds.auc" in error and "'roc_auc'" in error
    assert "broken.yaml" in error and "not valid YAML" in error


@pytest.mark.parametrize("name", ["vertebral_column", "wine_quality", "car_evaluation"])
def test_bundled_specs_name_only_metrics_their_problem_type_produces(name):
    from gated_ml import job_requests as jr
    from gated_ml.metric_names import evaluation_metrics
    from gated_ml.spec import load_pipeline

    spec = load_pipeline(name)
    assert set(spec.evaluation.thresholds) <= set(evaluation_metrics(spec.problem_type))
    assert spec.tuning.objective_metric in [d["Name"] for d in jr.metric_definitions(spec)]


def test_the_tuning_request_refuses_an_objective_its_metric_definitions_lack(spec, env, run):
    """A spec object built around validation still cannot send SageMaker an undefined objective."""
    from gated_ml import job_requests as jr
    from gated_ml.errors import RequestValidationError

    odd = spec.model_copy(update={"tuning": spec.tuning.model_copy(update={"objective_metric": "validation:f1"})})
    with pytest.raises(RequestValidationError, match="'validation:f1' is not among the request's MetricDefinitions"):
        jr.tuning_job(odd, env, run, "s3://b/code/sourcedir.tar.gz")
