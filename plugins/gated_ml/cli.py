"""Command line for the README's commands: ``python -m gated_ml.cli demo|score|stop-endpoint|approve|reject|promote|rollback|versions|…``.

The operators' actions run the pipeline's action DAG in process (``dag.test(run_conf=…)``), so
the action, its record and its asset event are the ones a trigger from the UI makes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys


def _summary(spec, dag_run) -> int:
    from gated_ml import job_requests as jr
    from gated_ml import storage
    from gated_ml.lake import local_path
    from gated_ml.local.hosting import describe_endpoint
    from gated_ml.naming import ds_of
    from gated_ml.targets.local import LocalTarget

    env = LocalTarget().environment()
    ds = ds_of(dag_run.logical_date)
    loc = jr.locations(spec, env)
    print("\n" + "=" * 78)
    print(f"{spec.name} run of ds={ds}: {dag_run.state}")
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or dt.datetime.max.replace(tzinfo=dt.UTC)):
        took = f"{(ti.end_date - ti.start_date).total_seconds():6.1f}s" if ti.start_date and ti.end_date else "      -"
        print(f"  {ti.state or 'not run':<16}{took}  {ti.task_id}")
    report_uri = loc.evaluation(ds) + "metrics.json"
    if storage.exists(report_uri):
        from gated_ml.evaluation.report import headline

        report = json.loads(storage.read_text(report_uri))
        m = report["metrics"]
        threshold = f", threshold {report['threshold']}" if report.get("threshold") is not None else ""
        w = report.get("window")
        if w:
            print(f"\nTrained on the window {w['first_ds']}..{w['last_ds']} ({len(w['batches'])} batches, refused {w['refused'] or 'none'}): rows {w['rows']}")
        print(f"\nTest-set metrics ({m['n']} rows{threshold}), decision: {report['decision']}")
        for k, v in headline(spec, m).items():
            print(f"  {k:<16} {v:.4f}")
        cm = m.get("confusion_matrix")
        if isinstance(cm, dict):
            print(f"  confusion matrix: TP {cm['tp']}  FP {cm['fp']}  FN {cm['fn']}  TN {cm['tn']}")
        elif cm is not None:
            print(f"  confusion matrix (rows: true {m['labels']}): {cm}")
        for reason in report["reasons"]:
            print(f"  REJECTED: {reason}")
        print(f"Evaluation report: {local_path(report_uri)}")
    print(f"Gate results:      {local_path(loc.quality(ds))}")
    endpoint = describe_endpoint(jr.endpoint_name(spec))
    if dag_run.state == "success" and endpoint and endpoint["EndpointStatus"] == "InService":
        test_file = local_path(loc.features(ds, "test") + "test.csv")
        row = test_file.read_text().splitlines()[0].split(",", 1)[1]
        print(f"\nEndpoint {endpoint['EndpointName']} ({endpoint['EndpointConfigName']}) is serving at {endpoint['Url']}")
        print("Call it with a stock boto3 client:")
        credentials = "region_name='us-east-1', aws_access_key_id='local', aws_secret_access_key='local'"
        client = f"boto3.client('sagemaker-runtime', endpoint_url='{endpoint['Url']}', {credentials})"
        call = f"c.invoke_endpoint(EndpointName='{endpoint['EndpointName']}', ContentType='text/csv', Accept='text/csv', Body=b'{row}')['Body'].read().decode()"
        print(f'  .venv/bin/python -c "import boto3; c = {client}; print({call})"')
        print(f"or: curl -s -X POST {endpoint['Url']}/invocations -H 'Content-Type: text/csv' -H 'Accept: text/csv' --data '{row}'")
        print("Stop it with: make stop-endpoint")
    if dag_run.state == "success":
        print(f"\nOperate it: make score DS={ds} (new rows, the approved model) · make versions · make approve|reject|promote VERSION=n REASON=…")
        print("            make rollback REASON=… · the trigger form's params (skip_tuning, max_tuning_jobs, deploy, thresholds, window)")
    print("=" * 78)
    return 0 if dag_run.state == "success" else 1


def _dag_bag():
    """The DAGs of the configured DAG folder, or None (the import errors printed)."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{err}", file=sys.stderr)
        return None
    return bag


def demo(pipeline: str, ds: str) -> int:
    from gated_ml.spec import load_pipeline

    bag = _dag_bag()
    if bag is None:
        return 1
    from gated_ml import job_requests as jr
    from gated_ml import replay as upstream
    from gated_ml.stages import data
    from gated_ml.targets.local import LocalTarget

    spec, env, dag = load_pipeline(pipeline), LocalTarget().environment(), bag.dags[pipeline]
    for uri in upstream.land(spec, env, "0001-01-01", ds):
        print(f"replayed {uri}")
    run_for = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    # the run of ds trains on its window: earlier batches no run has gated yet are run first, oldest first
    window = data.window(spec, env, jr.Run(run_for, 1))
    for earlier in [d for d in window["pending"] if d < ds]:
        print(f"Running DAG {pipeline} for {earlier} first: its batch is in the window of {ds} (task logs follow)...", flush=True)
        if dag.test(logical_date=dt.datetime.fromisoformat(earlier).replace(tzinfo=dt.UTC)).state != "success":
            print(f"the run of {earlier} did not succeed; its batch is left out of the window of {ds} if a gate refused it", flush=True)
    earlier_jobs = _jobs_of(spec, jr.Run(run_for, 1))
    if earlier_jobs:
        print(
            f"note: this lake already holds jobs of ds={ds} from an earlier run ({', '.join(earlier_jobs)}). The same code reuses them;"
            " if the code changed, a job of the same name is refused as AWS refuses it. `make clean` starts a fresh lake,"
            " or clear the date's tasks in the UI to run them again under a new try.",
            flush=True,
        )
    print(f"Running DAG {pipeline} for logical date {ds} on the local target (task logs follow)...", flush=True)
    return _summary(spec, dag.test(logical_date=run_for))


def score(pipeline: str, ds: str) -> int:
    """Land ``ds``'s scoring batch (if upstream has not) and run ``<pipeline>_scoring`` for it in process; say where the predictions are."""
    from gated_ml import replay as upstream
    from gated_ml.lake import local_path
    from gated_ml.spec import load_pipeline
    from gated_ml.targets.local import LocalTarget

    bag = _dag_bag()
    if bag is None:
        return 1
    spec, env = load_pipeline(pipeline), LocalTarget().environment()
    for uri in upstream.land(spec, env, ds, ds, zone="scoring"):
        print(f"replayed {uri}")
    run = bag.dags[spec.scoring_dag_id].test(logical_date=dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC))
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    print("\n" + "=" * 78)
    print(f"{spec.scoring_dag_id} run of ds={ds}: {run.state}")
    for task_id in ("choose_batch", "wait_for_batch", "approved_model", "scoring_gate", "score", "predictions_gate", "publish_predictions"):
        if task_id in tis:
            print(f"  {tis[task_id].state or 'not run':<16}{task_id}")
    published = tis["publish_predictions"].xcom_pull(task_ids="publish_predictions") if run.state == "success" else None
    if published:
        print(f"\n{published['rows']} rows scored: {local_path(published['predictions_uri'])}")
        print(f"the model that scored them:  {local_path(published['model_uri'])}")
    else:
        print("\nNothing published: the failed task's log above says why (no approved model, a refused batch).")
    print("=" * 78)
    return 0 if run.state == "success" else 1


def _jobs_of(spec, run) -> list[str]:
    """The local control plane's training and tuning jobs of this run's names (try 1)."""
    from gated_ml.job_requests import MAX_TUNING_LEN
    from gated_ml.local.control_plane import ControlPlane

    control = ControlPlane()
    names = {"training-jobs": run.name(spec, "train"), "tuning-jobs": run.name(spec, "tune", MAX_TUNING_LEN)}
    return [name for kind, name in names.items() if control.get(kind, name) is not None]


def setup() -> int:
    """What a deployment needs before its first run: each pipeline's pools (its endpoint, its ETL)."""
    from airflow.models.pool import Pool

    from gated_ml.dag_factory import pools
    from gated_ml.spec import load_spec, spec_paths

    for path in spec_paths():
        for name, slots in pools(load_spec(path)).items():
            Pool.create_or_update_pool(name, slots=slots, description=f"gated-ml: {name}", include_deferred=False)
            print(f"pool {name}: {slots} slots")
    return 0


def replay(pipeline: str, ds_from: str | None, ds_to: str | None, zone: str = "landing") -> int:
    from gated_ml import replay as upstream
    from gated_ml.spec import load_pipeline
    from gated_ml.targets import configured

    spec = load_pipeline(pipeline)
    dates = upstream.dates(spec, zone)
    written = upstream.land(spec, configured().environment(), ds_from or dates[0], ds_to or dates[-1], zone)
    for uri in written:
        print(f"landed {uri}")
    print(f"{len(written)} batches landed in {zone}/; the {zone} replay dates of {pipeline} are {', '.join(dates)}")
    return 0


def stop_endpoint(pipeline: str) -> int:
    from gated_ml import job_requests as jr
    from gated_ml.local.hosting import delete_endpoint
    from gated_ml.spec import load_pipeline

    name = jr.endpoint_name(load_pipeline(pipeline))
    print(f"endpoint {name}: {'stopped' if delete_endpoint(name) else 'was not running'}")
    return 0


def gx_suites() -> int:
    from gated_ml.quality.suite_files import export
    from gated_ml.spec import load_spec, spec_paths

    for path in spec_paths():
        for written in export(load_spec(path)):
            print(f"wrote {written}")
    return 0


def promote_baseline(pipeline: str, ds: str, reason: str) -> int:
    from gated_ml.quality.baseline import promote
    from gated_ml.spec import load_pipeline
    from gated_ml.targets import configured

    stats = promote(load_pipeline(pipeline), configured().environment(), ds, reason)
    print(f"baseline of {pipeline} is now ds={stats['source_ds']} ({stats['rows']} rows), recorded in baseline/history.jsonl")
    return 0


# --- operators' actions ---------------------------------------------------------------------------
ACTION_DAGS = {"approve": "review_model", "reject": "review_model", "promote": "promote_model", "rollback": "rollback_model"}


def act(action: str, pipeline: str, version: int | None, reason: str) -> int:
    """Run the pipeline's action DAG for ``action`` in process; print how it went and the versions after it."""
    from airflow.sdk.exceptions import ParamValidationError

    conf = {"reason": reason}
    if action != "rollback":
        conf["version"] = version
    if action in ("approve", "reject"):
        conf["decision"] = {"approve": "Approved", "reject": "Rejected"}[action]
    bag = _dag_bag()
    if bag is None:
        return 1
    dag_id = f"{pipeline}_{ACTION_DAGS[action]}"
    if dag_id not in bag.dags:
        print(f"no DAG {dag_id}: is {pipeline} a pipeline spec in include/pipelines/?", file=sys.stderr)
        return 1
    try:
        dag_run = bag.dags[dag_id].test(run_conf=conf)
    except ParamValidationError as e:
        print(f"{action} refused: {e}", file=sys.stderr)
        return 2
    print("\n" + "=" * 78)
    print(f"{dag_id}: {dag_run.state}")
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or dt.datetime.max.replace(tzinfo=dt.UTC)):
        print(f"  {ti.state or 'not run':<16}{ti.task_id}")
    if dag_run.state != "success":
        print("the failed task's log above says why; nothing after it ran")
    versions(pipeline)
    return 0 if dag_run.state == "success" else 1


def versions(pipeline: str) -> int:
    """Each version: its date, the model gate's decision, its approval in the Model Registry, whether it serves, what was done to it."""
    from gated_ml.evaluation import registry
    from gated_ml.spec import load_pipeline
    from gated_ml.stages.approvals import package_of
    from gated_ml.targets import configured

    spec, target = load_pipeline(pipeline), configured()
    env, client = target.environment(), target.registry_client()
    champ = registry.champion(spec, env)
    approved = registry.approved(spec, env, client)
    print(f"versions of {pipeline} (serving: {champ['version'] if champ else 'none'}, approved model: {approved['version'] if approved else 'none'})")
    for record in sorted(registry.versions(spec, env), key=lambda v: v["version"]):
        package = package_of(spec, client, record["version"])
        serving = f"  SERVING via {champ['endpoint_config']}" if champ and champ["version"] == record["version"] else ""
        approval = package["ModelApprovalStatus"] if package else "no model package"
        print(f"  v{record['version']:<4} ds={record['ds']}  model gate: {record['decision']:<22} registry: {approval}{serving}")
        for h in record.get("history", []):
            print(f"         {h['at'][:19]}  {h['action']:<8} by {h['by']}: {h['reason']} ({h['approval_before']} -> {h['approval_after']})")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gated_ml")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run a pipeline end to end on the local target")
    d.add_argument("--pipeline", default="vertebral_column")
    d.add_argument("--ds", default="2026-11-01", help="logical date, YYYY-MM-DD")
    d.add_argument("--target", choices=("local", "aws-emulated"), default="local", help="aws-emulated: the aws DAG against the AWS emulator, offline")
    sc = sub.add_parser("score", help="score DS's batch of new rows with the approved model (runs <pipeline>_scoring in process)")
    sc.add_argument("--pipeline", default="vertebral_column")
    sc.add_argument("--ds", required=True)
    s = sub.add_parser("stop-endpoint", help="stop a pipeline's local endpoint")
    s.add_argument("--pipeline", default="vertebral_column")
    sub.add_parser("gx-suites", help="write the gate suites of every spec to great_expectations/expectations/")
    b = sub.add_parser("promote-baseline", help="make an accepted batch the baseline of a pipeline (logged)")
    b.add_argument("--pipeline", required=True)
    b.add_argument("--ds", required=True)
    b.add_argument("--reason", required=True)
    r = sub.add_parser("replay", help="cut the bundled dataset into dated batches and land those from FROM to TO")
    r.add_argument("--pipeline", required=True)
    r.add_argument("--from", dest="ds_from", help="first date to land (default: the first batch)")
    r.add_argument("--to", dest="ds_to", help="last date to land (default: the last batch)")
    r.add_argument("--zone", choices=("landing", "scoring"), default="landing", help="landing: training batches; scoring: new rows for the scoring DAG")
    sub.add_parser("setup", help="create what runs need in Airflow's database (the endpoint pools)")
    for action, about in (
        ("approve", "approve a model version in the Model Registry"),
        ("reject", "reject a model version in the Model Registry"),
        ("promote", "deploy an Approved version to the endpoint"),
        ("rollback", "put back the version that served before the serving one, rejecting the serving one"),
    ):
        c = sub.add_parser(action, help=f"{about} (runs the action DAG in process)")
        c.add_argument("--pipeline", required=True)
        if action != "rollback":
            c.add_argument("--version", type=int, required=True)
        c.add_argument("--reason", required=True, help="why: recorded with your user name")
    v = sub.add_parser("versions", help="a pipeline's model versions: approval, serving, what was done to them")
    v.add_argument("--pipeline", required=True)
    a = p.parse_args(argv)
    if a.command in ACTION_DAGS:
        return act(a.command, a.pipeline, getattr(a, "version", None), a.reason)
    if a.command == "versions":
        return versions(a.pipeline)
    if a.command == "setup":
        return setup()
    if a.command == "replay":
        return replay(a.pipeline, a.ds_from, a.ds_to, a.zone)
    if a.command == "demo" and a.target == "aws-emulated":
        from pathlib import Path

        from gated_ml.emulated_aws.demo import demo as demo_on_emulator

        return demo_on_emulator(a.pipeline, a.ds, Path(os.environ.get("AIRFLOW_HOME", ".")) / "emulated-aws")
    if a.command == "demo":
        return demo(a.pipeline, a.ds)
    if a.command == "score":
        return score(a.pipeline, a.ds)
    if a.command == "gx-suites":
        return gx_suites()
    if a.command == "promote-baseline":
        return promote_baseline(a.pipeline, a.ds, a.reason)
    return stop_endpoint(a.pipeline)


if __name__ == "__main__":
    sys.exit(main())
