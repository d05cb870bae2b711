"""``glue.StartJobRun`` on this machine: the job's script on local Spark.

The script is the one the ``CreateJob`` request points at (``Command.ScriptLocation`` in
the lake); ``s3://`` URIs in the job arguments are rewritten to ``file://`` paths of the
local lake, which is the only difference from a run on Glue. A failed run is judged by its
error message as on `aws` (:func:`gated_ml.errors.glue_run_failure`): the script's refusal of
its data is never retried, anything else is. As on Glue,
``--extra-py-files`` (comma-separated S3 URIs of ``.py`` or ``.zip`` files) are importable
by the script and by Spark's Python workers: each ``.py`` file's folder (a ``.zip`` itself)
goes on the job's ``PYTHONPATH``; a missing one fails the run before Spark starts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from gated_ml.errors import GLUE_REFUSAL_MARKER, JobFailed, ResourceNotFound, glue_run_failure
from gated_ml.lake import local_path
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)


def _localise(value: str) -> str:
    if "," in value and value.startswith("s3://"):  # a list of URIs (--extra-py-files)
        return ",".join(_localise(v) for v in value.split(","))
    if not value.startswith("s3://"):
        return value
    # not Path.as_uri(): Spark does not decode the %3D it would make of "ds="
    return f"file://{local_path(value)}" + ("/" if value.endswith("/") else "")


def _python_path(job: str, extra_py_files: str) -> list[str]:
    """The ``PYTHONPATH`` entries of ``--extra-py-files``; a file that is not there fails the job."""
    entries = []
    for uri in (u.strip() for u in extra_py_files.split(",")):
        if not uri:
            continue
        if not uri.startswith("s3://"):
            raise JobFailed(f"Glue job {job} failed: --extra-py-files {uri!r} is not an s3:// URI")
        path = local_path(uri)
        if not path.is_file():
            raise JobFailed(f"Glue job {job} failed: --extra-py-files {uri} does not exist (looked for {path})")
        entry = str(path if path.suffix == ".zip" else path.parent)
        if entry not in entries:
            entries.append(entry)
    return entries


def error_message(stderr: str) -> str:
    """The job run's ``ErrorMessage`` as Glue gives it: the script's uncaught exception (its last line of output), else the output's tail.

    A refusal's line carries :data:`~gated_ml.errors.GLUE_REFUSAL_MARKER`; read by
    :func:`~gated_ml.errors.glue_run_failure` on both targets.
    """
    lines = [line for line in stderr.splitlines() if line.strip()]
    refusals = [line for line in lines if GLUE_REFUSAL_MARKER in line]
    return refusals[-1] if refusals else "\n".join(lines[-15:])


def run_job(create_job: dict, job_run: dict) -> dict:
    """Run the job to completion; return a ``GetJobRun``-like record or raise with the script's reason."""
    validate_request("glue", "CreateJob", create_job)
    validate_request("glue", "StartJobRun", job_run)
    if job_run["JobName"] != create_job["Name"]:
        raise ResourceNotFound(f"job run is for {job_run['JobName']!r} but the job is {create_job['Name']!r}")
    script = local_path(create_job["Command"]["ScriptLocation"])
    args = {**create_job.get("DefaultArguments", {}), **job_run.get("Arguments", {})}
    python_path = _python_path(create_job["Name"], args.get("--extra-py-files", ""))
    argv = [sys.executable, str(script)]
    for k, v in args.items():  # all of them, --extra-py-files too: the script ignores what it does not know
        argv += [k, _localise(v)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(python_path + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
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
        raise glue_run_failure(create_job["Name"], None, "FAILED", error_message(proc.stderr))
    return {"JobName": create_job["Name"], "JobRunState": "SUCCEEDED", "Arguments": job_run["Arguments"], "Log": proc.stdout[-2000:]}
