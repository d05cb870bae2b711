"""The training container's process: the SageMaker training toolkit, run as the container runs it.

SageMaker framework containers start script mode with the toolkit's ``train`` command
(``sagemaker-training``, ``sagemaker_training.cli.train``): it reads ``/opt/ml/input/config``,
JSON-decodes every hyperparameter, and runs ``python <sagemaker_program>`` with its own
rendering of them as arguments (``mapping.to_cmd_args``: a list as its Python repr, a dict as
``k=v,...``, ``{}`` as an empty string) and as ``SM_*`` variables (``SM_HPS`` is the decoded
values as JSON). It writes ``/opt/ml/output/failure`` when the script fails, unless the script
wrote one. This module starts that command on this machine, in its own process group (so a
job over its time limit can be stopped as a whole), with ``/opt/ml`` mapped to the job folder
through the toolkit's own ``SAGEMAKER_BASE_DIR``. Nothing here renders hyperparameters: the
toolkit does.

Two switches differ from a container, both the toolkit's own: ``SM_STUDIO_LOCAL_MODE`` skips
its DNS wait for the cluster's hosts (``algo-1`` resolves only inside SageMaker's network), and
the source directory is staged into ``/opt/ml/code`` before it starts (the toolkit skips its
S3 download when that folder is not empty; the lake is not S3 to boto3).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The framework container's command: the toolkit's ``train`` console script.
TRAIN_COMMAND = (sys.executable, "-m", "sagemaker_training.cli.train")
# What SageMaker gives a stopped algorithm between SIGTERM and SIGKILL (StoppingCondition docs).
STOP_GRACE_SECONDS = 120.0
# Variables of the calling process that a fresh container would not have.
_NOT_INHERITED_PREFIXES = ("SM_", "SAGEMAKER_", "PYTHONPATH", "TRAINING_JOB_")


def container_environ(job_dir: Path, job_name: str, job_arn: str) -> dict[str, str]:
    """The environment the toolkit starts in: this machine's, less the caller's Python path and SM_* state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED_PREFIXES)}
    env.update(
        SAGEMAKER_BASE_DIR=str(job_dir),
        TRAINING_JOB_NAME=job_name,
        TRAINING_JOB_ARN=job_arn,
        SM_STUDIO_LOCAL_MODE="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def start(job_dir: Path, job_name: str, job_arn: str) -> subprocess.Popen:
    """Start the toolkit's ``train`` for the job staged in ``job_dir`` (stdout and stderr as one text stream)."""
    return subprocess.Popen(
        TRAIN_COMMAND,
        cwd=job_dir,
        env=container_environ(job_dir, job_name, job_arn),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(proc: subprocess.Popen, grace: float | None = None) -> None:
    """Stop the container as SageMaker does: SIGTERM to every process in it, SIGKILL to what outlives ``grace`` seconds."""
    grace = STOP_GRACE_SECONDS if grace is None else grace
    pgid = proc.pid  # the toolkit leads its own process group (start_new_session)
    if not _group_alive(pgid):
        proc.wait()
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the toolkit itself, so only live processes keep the group
        if not _group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.wait()
