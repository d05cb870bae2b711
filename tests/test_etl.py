"""The Glue ETL script on local Spark: curated Parquet on good input, a clear refusal on bad input."""

import pytest

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import JobFailed, Refusal
from gated_ml.lake import local_path
from gated_ml.spec import PROJECT_ROOT, PipelineSpec
from gated_ml.stages import data
from gated_ml.stages.code import package_code
from gated_ml.targets.local import LocalTarget

ARFF = (PROJECT_ROOT / "include/data/vertebral_column/column_2C_weka.arff").read_bytes()


def _etl(spec, env, run, raw: bytes | None):
    if raw is not None:
        storage.write(jr.locations(spec, env).landing(run.ds) + jr.raw_file_name(spec), raw)
    return LocalTarget().run_step(data.GLUE_ETL, spec, env, run, code=package_code(spec, env))


@pytest.mark.slow  # Glue ETL on local Spark (starts a JVM)
def test_curates_the_real_file(lake, spec, env, run):
    import pandas as pd

    out = _etl(spec, env, run, ARFF + ARFF.split(b"@data")[1])  # every row twice: duplicates are dropped
    frame = pd.read_parquet(local_path(out["curated_uri"]))
    assert len(frame) == 310 and frame["class"].value_counts().to_dict() == {"Abnormal": 210, "Normal": 100}
    assert list(frame.columns) == [c.name for c in spec.columns]
    assert str(frame["pelvic_tilt"].dtype) == "float64"
    assert not list(local_path(jr.locations(spec, env).curated(run.ds)).parent.glob("*staging*"))


def _spec_with_extra_column(spec) -> PipelineSpec:
    data = spec.model_dump()
    cols = list(data["columns"])
    data["columns"] = cols[:-1] + [{"name": "bone_density", "type": "double", "categories": None}] + cols[-1:]
    return PipelineSpec.model_validate(data)


@pytest.mark.slow  # Glue ETL on local Spark (starts a JVM)
@pytest.mark.parametrize(
    "case, raw, expected",
    [
        ("missing source file", None, "cannot read the source file"),
        ("wrong delimiter", ARFF.split(b"@data")[0] + b"@data" + ARFF.split(b"@data")[1].replace(b",", b";"), "declares 7 attributes"),
        ("unknown column in the spec", ARFF, "spec columns not in the source: ['bone_density']"),
        ("text in a numeric column", ARFF.replace(b"63.0278175,", b"n/a,", 1), "column 'pelvic_incidence' must be double; found unparseable values ['n/a']"),
    ],
)
def test_bad_input_fails_clearly_and_writes_nothing(lake, spec, env, run, case, raw, expected):
    if case == "unknown column in the spec":
        spec = _spec_with_extra_column(spec)
    with pytest.raises(JobFailed) as err:
        _etl(spec, env, run, raw)
    assert expected in str(err.value)
    assert isinstance(err.value, Refusal)  # the script refused the data: retrying cannot help
    curated_zone = local_path(jr.locations(spec, env).curated(run.ds)).parent
    assert not curated_zone.exists() or not any(curated_zone.iterdir())  # nothing written, not even staging
