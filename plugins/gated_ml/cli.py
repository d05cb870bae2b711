"""Command line for the README's commands: ``python -m gated_ml.cli demo|stop-endpoint``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
        call = f"c.invoke_endpoint(EndpointName='{endpoint['EndpointName']}', ContentType='text/csv', Body=b'{row}')['Body'].read().decode()"
        print(f'  .venv/bin/python -c "import boto3; c = {client}; print({call})"')
        print(f"or: curl -s -X POST {endpoint['Url']}/invocations -H 'Content-Type: text/csv' --data '{row}'")
        print("Stop it with: make stop-endpoint")
    print("=" * 78)
    return 0 if dag_run.state == "success" else 1


def demo(pipeline: str, ds: str) -> int:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml.spec import load_pipeline

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{err}", file=sys.stderr)
        return 1
    dag = bag.dags[pipeline]
    logical = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    print(f"Running DAG {pipeline} for logical date {ds} on the local target (task logs follow)...", flush=True)
    dag_run = dag.test(logical_date=logical)
    return _summary(load_pipeline(pipeline), dag_run)


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gated_ml")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run a pipeline end to end on the local target")
    d.add_argument("--pipeline", default="vertebral_column")
    d.add_argument("--ds", default="2026-11-01", help="logical date, YYYY-MM-DD")
    s = sub.add_parser("stop-endpoint", help="stop a pipeline's local endpoint")
    s.add_argument("--pipeline", default="vertebral_column")
    sub.add_parser("gx-suites", help="write the gate suites of every spec to great_expectations/expectations/")
    b = sub.add_parser("promote-baseline", help="make an accepted batch the baseline of a pipeline (logged)")
    b.add_argument("--pipeline", required=True)
    b.add_argument("--ds", required=True)
    b.add_argument("--reason", required=True)
    a = p.parse_args(argv)
    if a.command == "demo":
        return demo(a.pipeline, a.ds)
    if a.command == "gx-suites":
        return gx_suites()
    if a.command == "promote-baseline":
        return promote_baseline(a.pipeline, a.ds, a.reason)
    return stop_endpoint(a.pipeline)


if __name__ == "__main__":
    sys.exit(main())
