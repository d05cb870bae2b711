"""A curated batch is read through the marker its Glue run wrote last: never uncommitted, never a mix of two runs."""

import io
import json

import pandas as pd
import pytest

from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.errors import Refusal, UncommittedBatch
from gated_ml.lake import local_path
from gated_ml.spec import PROJECT_ROOT
from gated_ml.stages import data, gates
from gated_ml.stages.code import package_code
from gated_ml.targets.local import LocalTarget

ARFF = (PROJECT_ROOT / "include/data/vertebral_column/column_2C_weka.arff").read_bytes()


def _parquet(frame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _rows(n: int, value: float) -> pd.DataFrame:
    return pd.DataFrame({"a": [value] * n})


def test_a_prefix_without_its_marker_is_refused_with_what_to_do(lake, spec, env, run):
    prefix = jr.locations(spec, env).curated(run.ds)
    storage.write(prefix + "part-00000.parquet", _parquet(_rows(3, 1.0)))  # a run that wrote its data, then died
    assert not batch_commit.is_committed(prefix)
    with pytest.raises(UncommittedBatch, match=r"no _COMMITTED marker.*re-run\) the ETL of that date") as refused:
        batch_commit.read_parquet(prefix)
    assert isinstance(refused.value, Refusal)
    with pytest.raises(UncommittedBatch):  # the curated gate never judges a half-written batch
        gates.gate_curated(spec, env, run)


def test_a_reader_takes_only_the_files_the_marker_names(lake, spec, env, run):
    prefix = jr.locations(spec, env).curated(run.ds)
    storage.write(prefix + "part-old-00000.parquet", _parquet(_rows(5, 1.0)))  # an earlier run's file, not yet deleted
    storage.write(prefix + "part-new-00000.parquet", _parquet(_rows(2, 2.0)))
    storage.write(prefix + "part-next-00000.parquet", _parquet(_rows(7, 3.0)))  # a later attempt, not committed yet
    storage.write(prefix + batch_commit.COMMIT_MARKER, json.dumps({"files": ["part-new-00000.parquet"], "rows": 2}))
    assert batch_commit.read_parquet(prefix)["a"].tolist() == [2.0, 2.0]
    assert batch_commit.committed_files(prefix) == [prefix + "part-new-00000.parquet"]


def test_a_marker_naming_no_files_is_refused(lake, spec, env, run):
    prefix = jr.locations(spec, env).curated(run.ds)
    storage.write(prefix + batch_commit.COMMIT_MARKER, json.dumps({"files": []}))
    with pytest.raises(UncommittedBatch, match="names no files"):
        batch_commit.committed_files(prefix)


@pytest.mark.slow  # Glue ETL on local Spark, twice
def test_a_re_run_of_the_glue_job_replaces_the_batch_whole(lake, spec, env, run):
    loc = jr.locations(spec, env)
    landing = loc.landing(run.ds) + jr.raw_file_name(spec)
    code = package_code(spec, env)
    storage.write(landing, ARFF)
    LocalTarget().run_step(data.GLUE_ETL, spec, env, run, code=code)
    first = batch_commit.manifest(loc.curated(run.ds))
    storage.write(landing, ARFF.split(b"@data")[0] + b"@data\n" + b"\n".join(ARFF.split(b"@data")[1].strip().splitlines()[:40]) + b"\n")
    LocalTarget().run_step(data.GLUE_ETL, spec, env, run, code=code)
    second = batch_commit.manifest(loc.curated(run.ds))
    assert first["attempt"] != second["attempt"] and (first["rows"], second["rows"]) == (310, 40)
    on_disk = sorted(p.name for p in local_path(loc.curated(run.ds)).iterdir() if not p.name.startswith("."))
    assert on_disk == sorted([*second["files"], batch_commit.COMMIT_MARKER])  # the first run's files and the staging folder are gone
    assert len(batch_commit.read_parquet(loc.curated(run.ds))) == 40
