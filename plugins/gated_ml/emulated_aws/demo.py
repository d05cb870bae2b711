"""``make demo TARGET=aws-emulated``: the aws DAG, its real provider operators, against the emulator, offline.

Starts the emulator (:mod:`.server`) on a loopback port, points Airflow's AWS connection and the
``gated_ml_*`` Variables at it (as environment variables of this process), lands the day's
batch in its S3, runs the DAG under ``dag.test()`` with ``[gated_ml] target = aws``, prints
what the run made, and stops the emulator (and with it the endpoint) at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

BUCKET = "gated-ml-emulated-lake"
ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/{}"


def airflow_environment(url: str) -> dict[str, str]:
    """What makes the aws target talk to the emulator: the connection, the Variables, the target."""
    return {
        "AWS_ACCESS_KEY_ID": "emulated",  # the emulator ignores signatures; never real credentials
        "AWS_SECRET_ACCESS_KEY": "emulated",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"endpoint_url": url, "region_name": "us-east-1"}}),
        "AIRFLOW_VAR_GATED_ML_BUCKET": BUCKET,
        "AIRFLOW_VAR_GATED_ML_SAGEMAKER_ROLE_ARN": ACCOUNT_ROLE.format("gated-ml-sagemaker"),
        "AIRFLOW_VAR_GATED_ML_GLUE_ROLE_ARN": ACCOUNT_ROLE.format("gated-ml-glue"),
        "AIRFLOW__GATED_ML__TARGET": "aws",
        "AIRFLOW__GATED_ML__POLL_SECONDS": "2",
    }


def _summary(spec, dag_run, emulator) -> int:
    import boto3

    from gated_ml import job_requests as jr

    kw = {"endpoint_url": emulator.url, "region_name": "us-east-1"}
    sm, s3 = boto3.client("sagemaker", **kw), boto3.client("s3", **kw)
    print("\n" + "=" * 78)
    print(f"{spec.name} on emulated AWS ({emulator.url}), run of {dag_run.logical_date:%Y-%m-%d}: {dag_run.state}")
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or dt.datetime.max.replace(tzinfo=dt.UTC)):
        print(f"  {ti.state or 'not run':<16}{ti.operator:<36}{ti.task_id}")
    for job in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"][:3]:
        print(f"training job {job['TrainingJobName']}: {job['TrainingJobStatus']}")
    report = f"{spec.name}/evaluation/ds={dag_run.logical_date:%Y-%m-%d}/metrics.json"
    if "Contents" in s3.list_objects_v2(Bucket=BUCKET, Prefix=report):
        body = json.loads(s3.get_object(Bucket=BUCKET, Key=report)["Body"].read())
        print(f"evaluation: {body['decision']}, metrics { ({k: round(v, 4) for k, v in body['metrics'].items() if isinstance(v, float)}) }")
    name = jr.endpoint_name(spec)
    endpoints = {e["EndpointName"]: e for e in sm.list_endpoints()["Endpoints"]}
    if name in endpoints:
        print(f"endpoint {name}: {endpoints[name]['EndpointStatus']} (stops with the emulator, now)")
    print("=" * 78)
    return 0 if dag_run.state == "success" else 1


def demo(pipeline: str, ds: str, folder: Path) -> int:
    from gated_ml.emulated_aws import server

    emulator = server.start(folder / "staging", folder / "emulator.log")
    print(f"AWS emulator on {emulator.url} (log: {folder / 'emulator.log'})", flush=True)
    try:
        os.environ.update(airflow_environment(emulator.url))
        return _run(pipeline, ds, emulator)
    finally:
        server.stop(emulator)


def _run(pipeline: str, ds: str, emulator) -> int:
    import boto3
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    from gated_ml import replay
    from gated_ml.spec import load_pipeline
    from gated_ml.targets.aws import AwsTarget

    boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}")
        return 1
    spec = load_pipeline(pipeline)
    for uri in replay.land(spec, AwsTarget().environment(), ds, ds):
        print(f"landed {uri}")
    print(f"Running DAG {pipeline} for {ds} on the aws target against the emulator (task logs follow)...", flush=True)
    return _summary(spec, bag.dags[pipeline].test(logical_date=dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)), emulator)
