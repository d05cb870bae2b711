"""``CreateTrainingJob`` on this machine, with the SageMaker training container contract.

The platform's part is here: the job folder plays ``/opt/ml`` (``input/config/{hyperparameters,
inputdataconfig,resourceconfig}.json``, ``input/data/<channel>/``, ``model/``, ``output/``,
``code/``); the container's part, script mode, is the SageMaker training toolkit itself
(:mod:`gated_ml.local.training_toolkit`). The job ends as SageMaker ends it: ``Completed`` (the
model folder packed as ``<S3OutputPath>/<job>/output/model.tar.gz``), ``Failed`` with
``FailureReason`` ``AlgorithmError: <the failure file>, exit code: N``, or, past
``StoppingCondition.MaxRuntimeInSeconds``, stopped (SIGTERM, then SIGKILL) and ``Stopped`` with
``SecondaryStatus`` ``MaxRuntimeExceeded`` (what the model folder holds is still uploaded).
Final metrics come from the log through the request's ``MetricDefinitions``, and the
``SecondaryStatusTransitions`` record each step.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from gated_ml.lake import atomic_write, local_path
from gated_ml.local import s3, training_toolkit
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)
KIND = "training-jobs"


def unpack_code(code_uri: str | Path, dest: Path) -> Path:
    """Unpack a ``sourcedir.tar.gz`` from the lake (refusing members that escape ``dest``)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(code_uri if isinstance(code_uri, Path) else local_path(code_uri)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def pack_dir(folder: Path, uri: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".tar.gz", delete=False) as tmp:
        with tarfile.open(tmp.name, "w:gz") as tar:
            for item in sorted(folder.iterdir()):
                tar.add(item, arcname=item.name)
        data = Path(tmp.name).read_bytes()
    os.unlink(tmp.name)
    atomic_write(local_path(uri), data)
    return uri


def final_metrics(log_text: str, definitions: list[dict], timestamp: str) -> list[dict]:
    """The last value each ``MetricDefinitions`` regex finds in the log, as ``FinalMetricDataList``."""
    out = []
    for d in definitions:
        matches = re.findall(d["Regex"], log_text)
        if matches:
            value = matches[-1][0] if isinstance(matches[-1], tuple) else matches[-1]
            out.append({"MetricName": d["Name"], "Value": float(value), "Timestamp": timestamp})
    return out


def _input_data_config(req: dict) -> dict:
    """``inputdataconfig.json``, as SageMaker writes it for each channel."""
    mode = req["AlgorithmSpecification"].get("TrainingInputMode", "File")
    out = {}
    for c in req.get("InputDataConfig", []):
        entry = {
            "TrainingInputMode": c.get("InputMode", mode),
            "S3DistributionType": c["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": c.get("RecordWrapperType", "None"),
        }
        if "ContentType" in c:
            entry["ContentType"] = c["ContentType"]
        out[c["ChannelName"]] = entry
    return out


def _resource_config(req: dict) -> dict:
    """``resourceconfig.json`` of a one-instance job (SageMaker names its host ``algo-1``)."""
    instance_type = req["ResourceConfig"]["InstanceType"]
    return {
        "current_host": "algo-1",
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1"],
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": ["algo-1"]}],
        "network_interface_name": "eth0",
    }


def stage_job(req: dict, job_dir: Path) -> None:
    """Lay out ``/opt/ml`` as SageMaker does before the container starts: config, channels, code."""
    if job_dir.exists():
        shutil.rmtree(job_dir)  # a fresh job: nothing left from an earlier job of this name
    config = job_dir / "input" / "config"
    config.mkdir(parents=True)
    hps = req.get("HyperParameters", {})
    (config / "hyperparameters.json").write_text(json.dumps(hps))  # every one, sagemaker_* included, as strings
    (config / "inputdataconfig.json").write_text(json.dumps(_input_data_config(req)))
    (config / "resourceconfig.json").write_text(json.dumps(_resource_config(req)))
    for channel in req.get("InputDataConfig", []):
        s3.download_prefix(channel["DataSource"]["S3DataSource"]["S3Uri"], job_dir / "input" / "data" / channel["ChannelName"])
    for sub in ("model", "output/data"):
        (job_dir / sub).mkdir(parents=True, exist_ok=True)
    unpack_code(code_source(req, job_dir), job_dir / "code")


CONTAINER_ROOT = "/opt/ml/"


class NoCodeInContainer(Exception):
    """The container cannot reach the code it is told to run (the job fails as on AWS)."""


def code_source(req: dict, job_dir: Path) -> str | Path:
    """Where the container finds ``sagemaker_submit_directory``: a file under ``/opt/ml`` (a ``code`` channel) or S3.

    Under ``EnableNetworkIsolation`` the container has no route to S3, so an ``s3://`` submit
    directory cannot be downloaded and the job fails, as on AWS; the code must come as an
    input channel (``job_requests`` sends it so).
    """
    submit = req.get("HyperParameters", {})["sagemaker_submit_directory"]
    if submit.startswith(CONTAINER_ROOT):
        path = job_dir / submit[len(CONTAINER_ROOT) :]
        if not path.is_file():
            raise NoCodeInContainer(f"ClientError: sagemaker_submit_directory {submit} does not exist in the container: no input channel holds it")
        return path
    if req.get("EnableNetworkIsolation"):
        raise NoCodeInContainer(
            f"ClientError: the container cannot download sagemaker_submit_directory {submit}: "
            "EnableNetworkIsolation blocks S3; send the code as an input channel"
        )
    return submit


class _LogReader(threading.Thread):
    """Collects the container's output while the platform watches the clock."""

    def __init__(self, stream, name: str, echo: bool):
        super().__init__(daemon=True)
        self.stream, self.job, self.echo, self.lines = stream, name, echo, []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)
            if self.echo:
                log.info("[%s] %s", self.job, line.rstrip())


def run_container(job_dir: Path, name: str, arn: str, max_runtime: float, echo: bool) -> tuple[int | None, str]:
    """Run the toolkit on the staged job; ``(exit code, log)``, the code ``None`` when the job ran over ``max_runtime``."""
    proc = training_toolkit.start(job_dir, name, arn)
    reader = _LogReader(proc.stdout, name, echo)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=max_runtime)
    except subprocess.TimeoutExpired:
        log.warning("training job %s ran past MaxRuntimeInSeconds=%s: stopping it", name, max_runtime)
        training_toolkit.stop(proc)
        code = None
    reader.join()
    return code, "".join(reader.lines)


def failure_reason(job_dir: Path, exit_code: int) -> str:
    """SageMaker's ``FailureReason`` of an algorithm that exited non-zero: the failure file's first 1024 characters."""
    failure = job_dir / "output" / "failure"
    detail = failure.read_text(errors="replace")[:1024] if failure.exists() else "See job logs for more information"
    return f"AlgorithmError: {detail}, exit code: {exit_code}"


def _transitions(started: str, ended: str, outcome: str, reason: str | None) -> list[dict]:
    steps = [("Starting", "Preparing the instances for training"), ("Downloading", "Downloading input data"), ("Training", "Training in progress")]
    steps += {
        "Completed": [("Uploading", "Uploading generated training model"), ("Completed", "Training job completed")],
        "Failed": [("Failed", f"Training job failed. Reason: {reason}")],
        "MaxRuntimeExceeded": [("Stopping", "Stopping the training job"), ("MaxRuntimeExceeded", "Training job runtime exceeded MaxRuntimeInSeconds provided")],
    }[outcome]
    times = [started] * 3 + [ended] * (len(steps) - 3)
    out = [{"Status": s, "StartTime": t, "StatusMessage": m} for (s, m), t in zip(steps, times, strict=True)]
    for this, following in itertools.pairwise(out):
        this["EndTime"] = following["StartTime"]
    out[-1]["EndTime"] = ended
    return out


def _upload_outputs(req: dict, name: str, job_dir: Path) -> dict:
    prefix = req["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output/"
    artifacts = {"S3ModelArtifacts": pack_dir(job_dir / "model", prefix + "model.tar.gz")}
    if any((job_dir / "output" / "data").iterdir()):
        pack_dir(job_dir / "output" / "data", prefix + "output.tar.gz")
    return artifacts


def run_training_job(req: dict, control: ControlPlane | None = None, echo: bool = True) -> dict:
    """Run the job to its end and return its ``DescribeTrainingJob`` record.

    A job name that already completed is reused (never run twice); any other existing
    job of that name is refused, as the API would.
    """
    validate_request("sagemaker", "CreateTrainingJob", req)
    control = control or ControlPlane()
    name = req["TrainingJobName"]
    existing = control.reuse(KIND, name, req, "TrainingJobStatus")
    if existing is not None:
        return existing

    started = now()
    record = {
        "TrainingJobName": name,
        "TrainingJobArn": control.arn(KIND, name),
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "Request": req,
        "HyperParameters": dict(req.get("HyperParameters", {})),
        "AlgorithmSpecification": req["AlgorithmSpecification"],
        "InputDataConfig": req.get("InputDataConfig", []),
        "OutputDataConfig": req["OutputDataConfig"],
        "StoppingCondition": req["StoppingCondition"],
        "CreationTime": started,
        "TrainingStartTime": started,
    }
    control.put(KIND, name, record)

    job_dir = control.work_dir(KIND, name)
    try:
        stage_job(req, job_dir)
    except NoCodeInContainer as e:
        end = now()
        record.update(TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=str(e), TrainingEndTime=end, LastModifiedTime=end)
        record["SecondaryStatusTransitions"] = _transitions(started, end, "Failed", str(e))
        return control.put(KIND, name, record)
    clock = time.monotonic()
    exit_code, log_text = run_container(job_dir, name, record["TrainingJobArn"], req["StoppingCondition"]["MaxRuntimeInSeconds"], echo)
    seconds = max(1, round(time.monotonic() - clock))
    (job_dir / "training.log").write_text(log_text)

    end = now()
    record.update(TrainingEndTime=end, LastModifiedTime=end, TrainingTimeInSeconds=seconds, BillableTimeInSeconds=seconds)
    record["FinalMetricDataList"] = final_metrics(log_text, req["AlgorithmSpecification"].get("MetricDefinitions", []), end)
    if exit_code is None:  # SageMaker uploads what a stopped job saved in its model folder
        record.update(TrainingJobStatus="Stopped", SecondaryStatus="MaxRuntimeExceeded", ModelArtifacts=_upload_outputs(req, name, job_dir))
        record["SecondaryStatusTransitions"] = _transitions(started, end, "MaxRuntimeExceeded", None)
    elif exit_code == 0:
        record.update(TrainingJobStatus="Completed", SecondaryStatus="Completed", ModelArtifacts=_upload_outputs(req, name, job_dir))
        record["SecondaryStatusTransitions"] = _transitions(started, end, "Completed", None)
    else:
        reason = failure_reason(job_dir, exit_code)
        record.update(TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=reason)
        record["SecondaryStatusTransitions"] = _transitions(started, end, "Failed", reason)
    return control.put(KIND, name, record)
