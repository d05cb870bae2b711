"""The GX suite files in great_expectations/ are what the specs generate, and what the gates run."""

import json

import pytest

from gated_ml.quality import suite_files, suites
from gated_ml.spec import load_spec, spec_paths


@pytest.mark.parametrize("path", spec_paths(), ids=lambda p: p.stem)
def test_committed_suites_match_their_spec(path):
    spec = load_spec(path)
    for gate in suites.GATES:
        file = suite_files.suite_path(spec.name, gate)
        assert file.exists(), f"{file} is missing: run `make gx-suites`"
        assert file.read_text() == suite_files.render(spec, gate), f"{file} is out of date with {path}: run `make gx-suites`"


def test_suites_are_gx_suites_with_parameters(spec):
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for gate in suites.GATES:
        doc = json.loads(suite_files.suite_path(spec.name, gate).read_text())
        suite = gx.ExpectationSuite(name=doc["name"], expectations=[ExpectationConfiguration(**e).to_domain_obj() for e in doc["expectations"]])
        assert len(suite.expectations) == len(doc["expectations"])
    curated = suite_files.load(spec, "curated")
    assert {"$PARAMETER": "pelvic_radius.fence_low"} in [e["kwargs"].get("min_value") for e in curated]
    assert {e["severity"] for e in curated if e["meta"]["check"] == "drift"} == {"warning"}
    assert {e["severity"] for e in curated if e["meta"]["check"] == "nulls"} == {"critical"}


def test_materialise_refuses_a_missing_parameter(spec):
    with pytest.raises(KeyError, match=r"pelvic_incidence\.fence_low"):
        suites.materialise(suite_files.load(spec, "curated"), {})


def test_a_stale_suite_file_is_refused(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__GATED_ML__GX_DIR", str(tmp_path))
    assert suite_files.load(spec, "landing") == suites.suite(spec, "landing")["expectations"]  # no file: from the spec
    suite_files.export(spec)
    assert suite_files.load(spec, "landing") == suites.suite(spec, "landing")["expectations"]
    edited = spec.model_copy(update={"gates": spec.gates.model_copy(update={"max_null_fraction": 0.2})})
    with pytest.raises(suite_files.StaleSuite, match=r"vertebral_column\.curated\.json is out of date .* run `make gx-suites`"):
        suite_files.load(edited, "curated")
