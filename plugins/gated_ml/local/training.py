"""``CreateTrainingJob`` on this machine, with the SageMaker training container contract.

The job folder plays ``/opt/ml``: ``input/config/{hyperparameters,inputdataconfig,
resourceconfig}.json``, ``input/data/<channel>/``, ``model/``, ``output/`` (``failure``)
and ``code/`` (the unpacked ``sagemaker_submit_directory``). The entry point runs as
``python <sagemaker_program> --name value ...`` with the ``SM_*`` environment; its model
folder is packed as ``<S3OutputPath>/<job>/output/model.tar.gz``; final metrics come from
the log through the request's ``MetricDefinitions``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from gated_ml.lake import atomic_write, local_path
from gated_ml.local import s3
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)
KIND = "training-jobs"
PLATFORM_HPS = ("sagemaker_program", "sagemaker_submit_directory", "sagemaker_region", "sagemaker_container_log_level")


def unpack_code(code_uri: str, dest: Path) -> Path:
    """Unpack a ``sourcedir.tar.gz`` from the lake (refusing members that escape ``dest``)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(local_path(code_uri)) as tar:
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


def container_env(job_dir: Path, req: dict, hps: dict, num_cpus: int) -> dict:
    channels = [c["ChannelName"] for c in req.get("InputDataConfig", [])]
    env = {
        "SM_MODEL_DIR": str(job_dir / "model"),
        "SM_INPUT_DIR": str(job_dir / "input"),
        "SM_INPUT_CONFIG_DIR": str(job_dir / "input" / "config"),
        "SM_OUTPUT_DIR": str(job_dir / "output"),
        "SM_OUTPUT_DATA_DIR": str(job_dir / "output" / "data"),
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(hps),
        "SM_NUM_CPUS": str(num_cpus),
        "SM_NUM_GPUS": "0",
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_USER_ENTRY_POINT": req["HyperParameters"]["sagemaker_program"],
        "SM_MODULE_DIR": req["HyperParameters"]["sagemaker_submit_directory"],
        "SM_TRAINING_ENV": json.dumps(
            {"job_name": req["TrainingJobName"], "hyperparameters": hps, "channel_input_dirs": {c: str(job_dir / "input" / "data" / c) for c in channels}}
        ),
    }
    for c in channels:
        env[f"SM_CHANNEL_{c.upper()}"] = str(job_dir / "input" / "data" / c)
    for k, v in hps.items():
        env[f"SM_HP_{k.upper()}"] = v
    return env


def run_training_job(req: dict, control: ControlPlane | None = None, num_cpus: int | None = None, echo: bool = True) -> dict:
    """Run the job to completion and return its ``DescribeTrainingJob`` record.

    A job name that already completed is reused (never run twice); any other existing
    job of that name is refused, as the API would.
    """
    validate_request("sagemaker", "CreateTrainingJob", req)
    control = control or ControlPlane()
    name = req["TrainingJobName"]
    existing = control.reuse(KIND, name, req, "TrainingJobStatus")
    if existing is not None:
        return existing

    job_dir = control.work_dir(KIND, name)
    hps = dict(req.get("HyperParameters", {}))
    user_hps = {k: v for k, v in hps.items() if k not in PLATFORM_HPS}
    record = {
        "TrainingJobName": name,
        "TrainingJobArn": control.arn(KIND, name),
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "Request": req,
        "HyperParameters": hps,
        "AlgorithmSpecification": req["AlgorithmSpecification"],
        "InputDataConfig": req.get("InputDataConfig", []),
        "OutputDataConfig": req["OutputDataConfig"],
        "CreationTime": now(),
        "TrainingStartTime": now(),
    }
    control.put(KIND, name, record)

    config = job_dir / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(user_hps))
    (config / "inputdataconfig.json").write_text(
        json.dumps({c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"} for c in req.get("InputDataConfig", [])})
    )
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    for channel in req.get("InputDataConfig", []):
        s3.download_prefix(channel["DataSource"]["S3DataSource"]["S3Uri"], job_dir / "input" / "data" / channel["ChannelName"])
    for sub in ("model", "output/data"):
        (job_dir / sub).mkdir(parents=True, exist_ok=True)
    code_dir = unpack_code(hps["sagemaker_submit_directory"], job_dir / "code")

    argv = [sys.executable, hps["sagemaker_program"]]
    for k, v in user_hps.items():
        argv += [f"--{k}", str(v)]
    env = {**os.environ, **container_env(job_dir, req, user_hps, num_cpus or os.cpu_count() or 1), "PYTHONPATH": str(code_dir), "PYTHONUNBUFFERED": "1"}
    timeout = req["StoppingCondition"]["MaxRuntimeInSeconds"]
    lines: list[str] = []
    status, reason = "Completed", None
    try:
        proc = subprocess.Popen(argv, cwd=code_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            lines.append(line)
            if echo:
                log.info("[%s] %s", name, line.rstrip())
        proc.wait(timeout=timeout)
        if proc.returncode != 0:
            failure = job_dir / "output" / "failure"
            detail = failure.read_text().strip() if failure.exists() else "".join(lines[-5:]).strip()
            status, reason = "Failed", f"AlgorithmError: {detail} (exit code {proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        status, reason = "Stopped", f"MaxRuntimeExceeded: the job ran longer than {timeout} seconds"
    (job_dir / "training.log").write_text("".join(lines))

    end = now()
    record.update(TrainingJobStatus=status, SecondaryStatus=status, TrainingEndTime=end, LastModifiedTime=end)
    record["FinalMetricDataList"] = final_metrics("".join(lines), req["AlgorithmSpecification"].get("MetricDefinitions", []), end)
    if status == "Completed":
        prefix = req["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output/"
        record["ModelArtifacts"] = {"S3ModelArtifacts": pack_dir(job_dir / "model", prefix + "model.tar.gz")}
        if any((job_dir / "output" / "data").iterdir()):
            pack_dir(job_dir / "output" / "data", prefix + "output.tar.gz")
    else:
        record["FailureReason"] = reason
    return control.put(KIND, name, record)
