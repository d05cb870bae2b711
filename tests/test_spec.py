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
