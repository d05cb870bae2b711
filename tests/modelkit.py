"""A real model for tests and benchmarks: splits of the bundled data, one training job, CreateModel."""

from __future__ import annotations

import io

import pandas as pd

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.local import hosting
from gated_ml.local.training import run_training_job
from gated_ml.spec import PROJECT_ROOT
from gated_ml.stages.code import package_code


def train_and_register(spec, env, run) -> tuple[dict, pd.DataFrame]:
    """Write train (every 2nd row), validation and test (every 4th) splits, train, CreateModel.

    Returns the model record and the data, label first (test rows: ``data.iloc[3::4]``).
    """
    raw = (PROJECT_ROOT / spec.source.path).read_text()
    data = pd.read_csv(io.StringIO(raw.split("@data")[1]), header=None, names=[c.name for c in spec.columns])
    data = data[[spec.target.column] + [c.name for c in spec.feature_columns]]
    loc = jr.locations(spec, env)
    storage.write(loc.features(run.ds, "train") + "train.csv", data.iloc[::2].to_csv(index=False))
    storage.write(loc.features(run.ds, "validation") + "validation.csv", data.iloc[1::4].to_csv(index=False))
    storage.write(loc.features(run.ds, "test") + "test.csv", data.iloc[3::4].to_csv(index=False, header=False))
    code = package_code(spec, env)["sourcedir_uri"]
    trained = run_training_job(jr.training_job(spec, env, run, code), echo=False)
    record = hosting.create_model(jr.model(spec, env, run, trained["ModelArtifacts"]["S3ModelArtifacts"], code))
    return record, data
