"""Glue job runs moto records but does not run: the job's script on local Spark (:mod:`gated_ml.local.glue`).

The script, its ``--extra-py-files`` and every object or prefix an ``s3://`` argument names
are staged in from moto's S3; what the script wrote under an argument prefix (one ending in
``/``, such as ``--output_uri``) is published back, the commit marker last; then the run is
``SUCCEEDED`` or ``FAILED`` with the script's reason as its ``ErrorMessage``.
"""

from __future__ import annotations

import logging

from gated_ml.emulated_aws import background, moto_backends, staging
from gated_ml.errors import ResourceNotFound

log = logging.getLogger(__name__)


def _s3_arguments(arguments: dict) -> list[str]:
    uris = []
    for value in arguments.values():
        uris += [v.strip() for v in str(value).split(",") if v.strip().startswith("s3://")]
    return uris


def job_requests(job, run) -> tuple[dict, dict]:
    """The ``CreateJob`` and ``StartJobRun`` requests that made this job and run, rebuilt from moto's records."""
    create = {"Name": job.name, "Role": job.role, "Command": job.command}
    for key, attribute in (("DefaultArguments", "default_arguments"), ("GlueVersion", "glue_version"), ("WorkerType", "worker_type")):
        if getattr(job, attribute, None):
            create[key] = getattr(job, attribute)
    return create, {"JobName": job.name, "Arguments": dict(run.arguments or {})}


def start(region: str, job_name: str, run_id: str, fail_reason: str | None = None) -> None:
    from moto.core.utils import utcnow

    job = moto_backends.glue(region).jobs[job_name]
    run = next(r for r in job.job_runs if r.job_run_id == run_id)
    run.status = "RUNNING"

    def finish(state: str, message: str | None = None) -> None:
        run.error_message = message
        run.completed_on = run.modified_on = utcnow()
        run.status = state  # last

    def work():
        if fail_reason:
            return finish("FAILED", fail_reason)
        create, start_run = job_requests(job, run)
        inputs = [create["Command"]["ScriptLocation"], *_s3_arguments(start_run["Arguments"])]
        outputs = [u for u in _s3_arguments(start_run["Arguments"]) if u.endswith("/")]
        for uri in inputs:
            try:
                staging.stage_in(uri)
            except ResourceNotFound:
                if uri not in outputs:  # an output prefix is empty before the first run
                    raise
        before = {u: staging.snapshot(u) for u in outputs}
        from gated_ml.local.glue import run_job

        run_job(create, start_run)
        for uri in outputs:
            staging.publish_changes(uri, before[uri])
        finish("SUCCEEDED")

    background.start(run_id, work, lambda reason: finish("STOPPED" if background.stop_requested(run_id) else "FAILED", reason))
