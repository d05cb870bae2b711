"""The scoring DAG (``<pipeline>_scoring``) on the local target, and its parts.

One small real model (``modelkit``), registered as an Approved model package with its lake
version record and the training baseline, serves the DAG runs of this module (``dag.test()``):
a scheduled day's batch is scored with the model's own predictions and the model named beside
them; a drifted batch is refused naming the column, the KL divergence and the limit, with
nothing published; a run without an approved model is refused saying so; a run triggered by
the approved-model asset scores the newest batch landed before it.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import GateFailed, RequestValidationError, StageError
from gated_ml.lake import local_path

SCORED_DS, DRIFTED_DS = "2026-11-01", "2026-12-06"
THRESHOLD = 0.3  # the version record's decision threshold (not the spec's 0.5): the labels must use it
STATES_AFTER_MODEL = ("scoring_gate", "score", "predictions_gate", "publish_predictions")


def _utc(ds: str, hour: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(ds).replace(hour=hour, tzinfo=dt.UTC)


def _register(spec, env, run, model: dict, decision: str) -> dict:
    """The lake's version record and the model package (as the deployment stage builds it) with ``decision``."""
    from gated_ml.evaluation import registry
    from gated_ml.local.model_registry import create_model_package
    from gated_ml.stages.deployment import package_request

    record = {"model_name": model["ModelName"], "model_data": model["PrimaryContainer"]["ModelDataUrl"], "ds": run.ds, "decision": decision}
    version = registry.register(spec, env, {**record, "threshold": THRESHOLD, "reasons": []})
    code = {"sourcedir_uri": model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]}
    chosen = {"model_data": record["model_data"], "job_name": model["ModelName"]}
    package = create_model_package(package_request(spec, env, run, chosen, {"version": version["version"], "decision": decision}, code))
    return {**version, "model_package_arn": package["ModelPackageArn"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory, spec):
    """A lake with an Approved model, its version record, the baseline and the replayed scoring batches."""
    from gated_ml import replay
    from gated_ml.quality import baseline
    from gated_ml.targets.local import LocalTarget
    from modelkit import train_and_register

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__GATED_ML__LAKE_ROOT", str(tmp_path_factory.mktemp("scoring") / "lake"))
        env = LocalTarget().environment()
        run = jr.Run(_utc("2026-10-25"), 1)
        model, data = train_and_register(spec, env, run)
        baseline.accept(spec, env, baseline.compute(spec, data.iloc[::2], run.ds))
        version = _register(spec, env, run, model, "Approved")
        landed = replay.land(spec, env, "2026-11-01", "2026-11-30", zone="scoring")
        yield {"env": env, "model": model, "version": version, "landed": landed}


def _run_scoring(spec, **when):
    from gated_ml.scoring_dag import build_scoring_dag

    dr = build_scoring_dag(spec).test(**when)
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _model_predictions(spec, model: dict, rows: pd.DataFrame) -> list[float]:
    """What the model's own inference entry point answers for ``rows`` (no transform, no server)."""
    folder = local_path(model["PrimaryContainer"]["ModelDataUrl"]).parent / "unpacked"
    with tarfile.open(local_path(model["PrimaryContainer"]["ModelDataUrl"])) as tar:
        tar.extractall(folder, filter="data")
    sys.path.insert(0, str(ROOT / "include" / "sagemaker"))
    try:
        inference = importlib.import_module("inference")
    finally:
        sys.path.remove(str(ROOT / "include" / "sagemaker"))
    loaded = inference.model_fn(str(folder))
    answer = inference.predict_fn(inference.input_fn(rows.to_csv(index=False, header=False), "text/csv"), loaded)
    return answer["predictions"]


# --- the DAG ---------------------------------------------------------------------------------
@pytest.mark.e2e  # a whole (small) DAG under dag.test()
def test_a_days_batch_is_scored_by_the_approved_model_named_beside_the_predictions(airflow_db, served, spec):
    from gated_ml.stages.scoring import read_batch, typed

    loc = jr.locations(spec, served["env"])
    dr, states = _run_scoring(spec, logical_date=_utc(SCORED_DS))
    assert dr.state == "success", states
    batch = typed(spec, read_batch(spec, storage.read_bytes(loc.scoring(SCORED_DS) + jr.raw_file_name(spec))))
    published = pd.read_csv(io.StringIO(storage.read_text(loc.predictions(SCORED_DS) + "predictions-v0001.csv")))
    provenance = json.loads(storage.read_text(loc.predictions(SCORED_DS) + "predictions-v0001.model.json"))

    features = [c.name for c in spec.feature_columns]
    assert list(published.columns) == [*features, "prediction", "predicted_label"]
    assert len(published) == len(batch) == spec.scoring.replay.rows
    np.testing.assert_allclose(published[features].to_numpy(), batch[features].to_numpy())  # the rows as landed, in order
    expected = _model_predictions(spec, served["model"], batch)
    np.testing.assert_allclose(published["prediction"], expected, rtol=1e-6)
    labels = np.where(np.asarray(expected) >= THRESHOLD, spec.target.positive_class, "Normal")
    assert published["predicted_label"].tolist() == labels.tolist()
    assert provenance["model_version"] == served["version"]["version"] == 1
    assert provenance["model_package_arn"] == served["version"]["model_package_arn"]
    assert provenance["model_name"] == served["model"]["ModelName"]
    assert (provenance["ds"], provenance["scoring_run"], provenance["decision_threshold"]) == (SCORED_DS, dr.run_id, THRESHOLD)


@pytest.mark.e2e  # a whole (small) DAG under dag.test()
def test_a_drifted_batch_is_refused_naming_column_kl_and_limit_and_nothing_is_published(airflow_db, served, spec):
    from gated_ml import replay
    from gated_ml.stages import scoring

    env, loc = served["env"], jr.locations(spec, served["env"])
    head, _, rows = replay.scoring_batches(spec)[SCORED_DS].decode().partition("@data\n")
    fields = [line.split(",") for line in rows.splitlines()]
    shifted = "".join(",".join([*f[:4], str(float(f[4]) + 60), *f[5:]]) + "\n" for f in fields)  # pelvic_radius shifted by 60
    storage.write(loc.scoring(DRIFTED_DS) + jr.raw_file_name(spec), head + "@data\n" + shifted)
    dr, states = _run_scoring(spec, logical_date=_utc(DRIFTED_DS))
    reason = json.loads(storage.read_text(loc.quarantine(DRIFTED_DS) + "scoring_drift/reason.json"))
    published = storage.list_uris(loc.predictions(DRIFTED_DS))
    batch = scoring.choose_batch(spec, env, jr.Run(_utc(DRIFTED_DS), 1), scheduled=True)
    with pytest.raises(GateFailed, match=r"drift: column 'pelvic_radius': observed KL divergence \d+\.\d+ from the baseline, threshold below 0\.5"):
        scoring.gate_batch(spec, env, jr.Run(_utc(DRIFTED_DS), 2), batch)

    assert dr.state == "failed" and states["scoring_gate"] == "failed", states
    assert {states[t] for t in STATES_AFTER_MODEL[1:]} == {"upstream_failed"}
    failed = [f for f in reason["findings"] if not f["success"] and f["severity"] == "critical"]
    assert [(f["check"], f["column"]) for f in failed] == [("drift", "pelvic_radius")]  # the other columns pass
    assert published == []


@pytest.mark.e2e  # a whole (small) DAG under dag.test()
def test_an_asset_triggered_run_scores_the_newest_batch_landed_before_it(airflow_db, served, spec):
    loc = jr.locations(spec, served["env"])
    dr, states = _run_scoring(spec, logical_date=None, run_after=_utc("2026-11-20", hour=9))  # batches 11-01, 08, 15, 22 landed
    assert dr.state == "success", states
    assert dr.logical_date is None
    provenance = json.loads(storage.read_text(loc.predictions("2026-11-15") + "predictions-v0001.model.json"))
    assert storage.exists(loc.quality("2026-11-15") + "scoring_input.json")
    assert (provenance["ds"], provenance["scoring_run"]) == ("2026-11-15", dr.run_id)
    assert provenance["transform_job"] == "vertebral-column-score-20261120t0900-1"


@pytest.mark.e2e  # a whole (small) DAG under dag.test()
def test_make_score_runs_the_scoring_dag_and_says_where_the_predictions_are(airflow_db, served, spec, capsys):
    from gated_ml import cli
    from gated_ml.lake import local_path

    loc = jr.locations(spec, served["env"])
    assert cli.main(["score", "--pipeline", spec.name, "--ds", "2026-11-22"]) == 0
    out = capsys.readouterr().out
    published = local_path(loc.predictions("2026-11-22") + "predictions-v0001.csv")
    assert f"{spec.scoring.replay.rows} rows scored: {published}" in out and published.exists()
    assert f"the model that scored them:  {local_path(loc.predictions('2026-11-22') + 'predictions-v0001.model.json')}" in out


@pytest.mark.e2e  # a whole (small) DAG under dag.test()
def test_no_approved_model_is_refused_saying_so_and_nothing_is_scored(airflow_db, lake, spec, env, run):
    from gated_ml import replay
    from gated_ml.local.model_registry import ModelRegistryClient
    from gated_ml.stages import scoring

    replay.land(spec, env, SCORED_DS, SCORED_DS, zone="scoring")
    _, states = _run_scoring(spec, logical_date=_utc(SCORED_DS))
    assert states["approved_model"] == "failed" and states["wait_for_batch"] == "success", states
    assert {states[t] for t in STATES_AFTER_MODEL} == {"upstream_failed"}
    assert storage.list_uris(jr.locations(spec, env).predictions(SCORED_DS)) == []
    with pytest.raises(StageError, match=r"no approved model for vertebral_column: .*`make approve PIPELINE=vertebral_column VERSION=<n> REASON=...`"):
        scoring.approved_model(spec, env, ModelRegistryClient())


def test_a_model_waiting_for_approval_is_not_the_approved_model(lake, spec, env, run):
    from gated_ml.local.model_registry import ModelRegistryClient
    from gated_ml.stages import scoring

    model = {
        "ModelName": "m-pending",
        "PrimaryContainer": {"ModelDataUrl": "s3://b/m/model.tar.gz", "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/c.tar.gz"}},
    }
    _register(spec, env, run, model, "PendingManualApproval")
    with pytest.raises(StageError, match="no approved model for vertebral_column"):
        scoring.approved_model(spec, env, ModelRegistryClient())
    _register(spec, env, jr.Run(_utc("2026-11-08"), 1), {**model, "ModelName": "m-approved"}, "Approved")
    assert scoring.approved_model(spec, env, ModelRegistryClient())["model_name"] == "m-approved"


def test_an_asset_run_with_no_batch_landed_before_it_is_refused(lake, spec, env):
    from gated_ml import replay
    from gated_ml.stages import scoring

    replay.land(spec, env, "2026-11-08", "2026-11-08", zone="scoring")
    assert scoring.choose_batch(spec, env, jr.Run(_utc("2026-11-09", 3), 1), scheduled=False)["ds"] == "2026-11-08"
    with pytest.raises(StageError, match=r"no scoring batch has landed under s3://.*/vertebral_column/scoring/ at or before 2026-11-07"):
        scoring.choose_batch(spec, env, jr.Run(_utc("2026-11-07", 23), 1), scheduled=False)


# --- reading a batch ------------------------------------------------------------------------
def test_a_batch_is_read_with_or_without_its_target_column(spec):
    from gated_ml import replay
    from gated_ml.stages.scoring import read_batch, typed

    features = [c.name for c in spec.feature_columns]
    without = read_batch(spec, replay.scoring_batches(spec)[SCORED_DS])
    with_target = read_batch(spec, replay.batches(spec)[replay.batch_dates(spec)[1]])
    assert list(without.columns) == list(with_target.columns) == features
    assert all(typed(spec, without)[c].dtype == float for c in features)
    unparseable = b"@relation r\n@attribute a numeric\n@data\n1\n"
    assert list(read_batch(spec, unparseable).columns) == ["a"]  # a file of other columns keeps its names: the schema check names them


@pytest.mark.slow  # a GX checkpoint
def test_a_missing_value_is_a_null_and_an_unparseable_one_is_refused_by_name(lake, spec, env):
    from gated_ml import replay
    from gated_ml.quality import baseline
    from gated_ml.stages import scoring

    body = replay.scoring_batches(spec)[SCORED_DS].decode()
    frame = scoring.typed(spec, scoring.read_batch(spec, body.encode()))
    baseline.accept(spec, env, baseline.compute(spec, frame.assign(**{spec.target.column: "Normal"}), "2026-10-01"))
    head, _, rows = body.partition("@data\n")
    lines = rows.splitlines()
    lines[0], lines[1] = "?," + lines[0].split(",", 1)[1], "abc," + lines[1].split(",", 1)[1]  # pelvic_incidence missing, unparseable
    storage.write(jr.locations(spec, env).scoring(SCORED_DS) + jr.raw_file_name(spec), head + "@data\n" + "\n".join(lines) + "\n")
    batch = scoring.choose_batch(spec, env, jr.Run(_utc(SCORED_DS), 1), scheduled=True)
    with pytest.raises(GateFailed) as refused:
        scoring.gate_batch(spec, env, jr.Run(_utc(SCORED_DS), 1), batch)
    assert "FAIL nulls: column 'pelvic_incidence': observed 2.50% null (1 of 40 rows), threshold at most 0.00% null" in str(refused.value)
    assert "FAIL parseable: column 'pelvic_incidence'" in str(refused.value) and "['abc']" in str(refused.value)
    assert str(refused.value).count("  FAIL ") == 2  # nothing else failed
    assert storage.exists(jr.locations(spec, env).quarantine(SCORED_DS) + "scoring_input/" + jr.raw_file_name(spec))


@pytest.mark.slow  # the scoring_input gate runs (GX) before the stale drift suite is read
def test_a_drift_limit_changed_without_make_gx_suites_is_refused(lake, spec, env, tmp_path, monkeypatch):
    from gated_ml import replay
    from gated_ml.errors import StaleSuite
    from gated_ml.quality import baseline, suite_files
    from gated_ml.stages import scoring

    monkeypatch.setenv("AIRFLOW__GATED_ML__GX_DIR", str(tmp_path / "gx"))
    suite_files.export(spec)
    replay.land(spec, env, SCORED_DS, SCORED_DS, zone="scoring")
    frame = scoring.typed(spec, scoring.read_batch(spec, replay.scoring_batches(spec)[SCORED_DS]))
    baseline.accept(spec, env, baseline.compute(spec, frame.assign(**{spec.target.column: "Normal"}), "2026-10-01"))
    looser = spec.model_copy(update={"scoring": spec.scoring.model_copy(update={"max_drift_kl": 5.0})})
    batch = scoring.choose_batch(looser, env, jr.Run(_utc(SCORED_DS), 1), scheduled=True)
    with pytest.raises(StaleSuite, match=r"vertebral_column\.scoring_drift\.json is out of date .* run `make gx-suites`"):
        scoring.gate_batch(looser, env, jr.Run(_utc(SCORED_DS), 1), batch)


# --- the request --------------------------------------------------------------------------
def test_the_scoring_transform_uses_the_existing_model_and_passes_botocore_and_the_local_table(spec, env):
    from gated_ml.local import fidelity

    run = jr.Run(_utc("2026-11-20", hour=9), 1)
    req = jr.scoring_transform_job(spec, env, run, "vertebral-column-model-20261025-1", "s3://b/in/", "s3://b/out/")
    assert req["TransformJobName"] == "vertebral-column-score-20261120t0900-1"
    assert req["ModelName"] == "vertebral-column-model-20261025-1"
    assert req["DataProcessing"] == {"JoinSource": "Input"}  # the prediction appended to the row as sent
    assert req["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://b/in/"
    fidelity.admit("transform", req)
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    secure = spec.model_copy(update={"security": spec.security.model_copy(update={"kms_key_id": kms})})
    encrypted = jr.scoring_transform_job(secure, env, run, "m", "s3://b/in/", "s3://b/out/")
    assert encrypted["TransformOutput"]["KmsKeyId"] == encrypted["TransformResources"]["VolumeKmsKeyId"] == kms
    fidelity.admit("transform", encrypted)
    with pytest.raises(RequestValidationError, match="ModelName"):
        jr.scoring_transform_job(spec, env, run, "not a model name!", "s3://b/in/", "s3://b/out/")


# --- replay ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vertebral_column", "wine_quality", "car_evaluation"])
def test_scoring_replay_is_deterministic_and_drops_the_target(name):
    from gated_ml import replay
    from gated_ml.spec import load_pipeline
    from gated_ml.stages.scoring import read_batch

    spec = load_pipeline(name)
    first, again = replay.scoring_batches(spec), replay.scoring_batches(spec)
    assert first == again and list(first) == replay.scoring_dates(spec) == ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22"]
    assert len(set(first.values())) == len(first)  # each date its own rows
    frames = [read_batch(spec, body) for body in first.values()]
    assert all(list(f.columns) == [c.name for c in spec.feature_columns] and len(f) == spec.scoring.replay.rows for f in frames)
    as_landed = jr.raw_format(spec).read_pandas(first["2026-11-01"])  # the file itself, not what the scoring reader keeps
    assert as_landed.shape[1] == len(spec.feature_columns) and spec.target.column not in as_landed.columns


def test_scoring_replay_lands_under_scoring_and_never_overwrites(lake, spec, env, capsys):
    from gated_ml import cli

    assert cli.main(["replay", "--pipeline", spec.name, "--zone", "scoring", "--from", "2026-11-08", "--to", "2026-11-15"]) == 0
    uri = jr.locations(spec, env).scoring("2026-11-08") + jr.raw_file_name(spec)
    assert storage.exists(uri) and not storage.exists(jr.locations(spec, env).landing("2026-11-08") + jr.raw_file_name(spec))
    storage.write(uri, b"upstream's own bytes")
    assert cli.main(["replay", "--pipeline", spec.name, "--zone", "scoring"]) == 0
    assert storage.read_bytes(uri) == b"upstream's own bytes"
    assert "2 batches landed in scoring/" in capsys.readouterr().out


# --- the spec -------------------------------------------------------------------------------
def test_every_spec_has_a_scoring_section_with_defaults(tmp_path):
    from conftest import write_spec
    from gated_ml.spec import load_spec

    text = (ROOT / "include" / "pipelines" / "vertebral_column.yaml").read_text()
    bare = load_spec(write_spec(tmp_path, "\n".join(line for line in text.splitlines() if not line.startswith("scoring:"))))
    assert (bare.scoring.schedule, bare.scoring.max_drift_kl, bare.scoring_arrival) == ("@weekly", 0.5, bare.arrival)
    assert bare.scoring_dag_id == "vertebral_column_scoring"
    own = load_spec(write_spec(tmp_path, text.replace("scoring: {", "scoring: {arrival: {timeout_minutes: 5}, ")))
    assert own.scoring_arrival.timeout_minutes == 5 and own.arrival.timeout_minutes == 60


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('{schedule: "every monday"}', "scoring.schedule: .*'every monday' is not a cron expression or preset"),
        ("{max_drift_kl: 0}", "scoring.max_drift_kl: Input should be greater than 0"),
        ("{replay: {rows: 0}}", "scoring.replay.rows: Input should be greater than or equal to 1"),
        ("{limit: 1}", "scoring.limit: unknown field"),
    ],
)
def test_a_bad_scoring_section_is_refused_naming_the_field(tmp_path, setting, message):
    from conftest import write_spec
    from gated_ml.errors import SpecError
    from gated_ml.spec import load_spec

    text = (ROOT / "include" / "pipelines" / "vertebral_column.yaml").read_text()
    text = "\n".join(f"scoring: {setting}" if line.startswith("scoring:") else line for line in text.splitlines())
    with pytest.raises(SpecError, match=message):
        load_spec(write_spec(tmp_path, text))


def test_a_null_schedule_scores_on_approvals_only(spec):
    from airflow.sdk import AssetOrTimeSchedule

    from gated_ml import assets
    from gated_ml.scoring_dag import schedule

    assert schedule(spec.model_copy(update={"scoring": spec.scoring.model_copy(update={"schedule": None})})) == [assets.approved_model(spec)]
    timed = schedule(spec)
    assert isinstance(timed, AssetOrTimeSchedule) and timed.timetable.expression == "0 0 * * 0"


# --- the curated asset ----------------------------------------------------------------------
@pytest.mark.e2e  # the training DAG under dag.test(), every task but one marked successful
def test_the_training_dag_emits_the_curated_asset_with_its_date(airflow_db, lake, spec):
    """Only ``etl.curated_asset`` runs (every other task is marked successful): its event reaches Airflow's asset events."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from gated_ml.dag_factory import build_dag

    dag = build_dag(spec)
    others = "|".join(t.task_id.replace(".", r"\.") for t in dag.tasks if t.task_id != "etl.curated_asset")
    dr = dag.test(logical_date=_utc("2026-11-08"), mark_success_pattern=f"^({others})$")
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()}["etl.curated_asset"] == "success"
    with create_session() as session:
        events = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(AssetModel.name == "vertebral_column.curated").all()
        extras = [e.extra for e in events if e.source_run_id == dr.run_id]
    assert extras == [{"ds": "2026-11-08", "partition": None}]
