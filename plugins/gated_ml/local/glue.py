"""``glue.StartJobRun`` on this machine: the job's script on local Spark.

The script is the one the ``CreateJob`` request points at (``Command.ScriptLocation`` in
the lake); ``s3://`` URIs in the job arguments are rewritten to ``file://`` paths of the
local lake, which is the only difference from a run on Glue.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from gated_ml.lake import local_path
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)


class GlueJobError(RuntimeError):
    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable  # False when the script refused the data (exit code 2)


def _localise(value: str) -> str:
    if not value.startswith("s3://"):
        return value
    # not Path.as_uri(): Spark does not decode the %3D it would make of "ds="
    return f"file://{local_path(value)}" + ("/" if value.endswith("/") else "")


def run_job(create_job: dict, job_run: dict) -> dict:
    """Run the job to completion; return a ``GetJobRun``-like record or raise with the script's reason."""
    validate_request("glue", "CreateJob", create_job)
    validate_request("glue", "StartJobRun", job_run)
    if job_run["JobName"] != create_job["Name"]:
        raise GlueJobError(f"job run is for {job_run['JobName']!r} but the job is {create_job['Name']!r}")
    script = local_path(create_job["Command"]["ScriptLocation"])
    args = {**create_job.get("DefaultArguments", {}), **job_run.get("Arguments", {})}
    argv = [sys.executable, str(script)]
    for k, v in args.items():
        argv += [k, _localise(v)]
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # one small machine, not a Glue cluster: no UI, few shuffle partitions (the default 200 dominates small jobs)
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --driver-memory 1g --conf spark.ui.enabled=false "
        "--conf spark.sql.shuffle.partitions=4 --conf spark.sql.adaptive.enabled=true pyspark-shell",
    }
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=script.parent)
    for line in proc.stdout.splitlines():
        log.info("[glue] %s", line)
    if proc.returncode != 0:
        reasons = [l for l in proc.stderr.splitlines() if l.startswith("ETL failed:")]
        reason = reasons[-1] if reasons else "\n".join(proc.stderr.splitlines()[-15:])
        raise GlueJobError(f"Glue job {create_job['Name']} failed: {reason}", retryable=proc.returncode != 2)
    return {"JobName": create_job["Name"], "JobRunState": "SUCCEEDED", "Arguments": job_run["Arguments"], "Log": proc.stdout[-2000:]}
