"""``CreateTransformJob`` on this machine: the job's lifecycle around SageMaker's transform agent.

As on SageMaker, the model runs in its inference container (a local model server, with the
job's ``Environment``) and the agent posts each input object's payloads to
``/invocations`` with the job's ``ContentType`` and ``Accept``
(:mod:`gated_ml.local.transform_records` holds the data path). Values the local target does
not honour are refused before the job exists (:mod:`gated_ml.local.transform_request`).
Each ``<S3OutputPath>/<object key under the prefix>.out`` is written whole or not at all.

A model that answers an error (after ``ModelClientConfig.InvocationsMaxRetries`` retries,
each bounded by ``InvocationsTimeoutInSeconds``), an input that breaks a rule of the request
(a record over ``MaxPayloadInMB``, an object that is not Gzip) end the job ``Failed`` with a
``FailureReason`` and raise :class:`JobFailed` (retrying the same input cannot help); a
container that does not start is a :class:`ContainerError` (a fault, retried).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from pathlib import Path

from gated_ml.errors import JobFailed
from gated_ml.lake import atomic_write, local_path
from gated_ml.local import containers, s3, transform_request
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.local.transform_records import Transform, csv_filter  # noqa: F401 (csv_filter: the filter rule, re-exported)
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)
KIND = "transform-jobs"


class Invoker:
    """The agent's HTTP calls to the container, with the job's headers, time-out and retries."""

    def __init__(self, url: str, req: dict, log_path: Path):
        tin, tout = req["TransformInput"], req["TransformOutput"]
        self.url, self.log_path = f"{url}/invocations", log_path
        self.headers = {k: v for k, v in (("Content-Type", tin.get("ContentType")), ("Accept", tout.get("Accept"))) if v}
        client = req.get("ModelClientConfig", {})
        self.timeout, self.retries = client.get("InvocationsTimeoutInSeconds", 600), client.get("InvocationsMaxRetries", 3)

    def _once(self, payload: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url, data=payload, method="POST", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except TimeoutError:
            return 0, f"no answer within InvocationsTimeoutInSeconds ({self.timeout} s)".encode()

    def __call__(self, payload: bytes) -> bytes:
        for attempt in range(self.retries + 1):
            status, body = self._once(payload)
            if status == 200:
                return body
            log.warning("invocation attempt %d answered %s", attempt + 1, status or "nothing")
        what = f"status {status}" if status else body.decode()
        raise JobFailed(
            f"ClientError: the model container answered {what} to /invocations after {self.retries + 1} attempt(s): "
            f"{body.decode(errors='replace')[:300]!r}; see the container log {self.log_path}"
        )


def _objects(prefix_uri: str) -> list[tuple[Path, str]]:
    """Input objects and their keys relative to the prefix (the ``.out`` object's name)."""
    base = local_path(prefix_uri)
    files = s3.list_files(prefix_uri)
    return [(f, f.name if f == base else f.relative_to(base).as_posix()) for f in files]


def _begin(req: dict, control: ControlPlane) -> dict:
    name = req["TransformJobName"]
    record = {
        "TransformJobName": name,
        "TransformJobArn": control.arn(KIND, name),
        "ModelName": req["ModelName"],
        "TransformJobStatus": "InProgress",
        "CreationTime": now(),
        **{k: v for k, v in req.items() if k not in ("TransformJobName", "ModelName", "Tags")},
        "Request": req,
    }
    return control.put(KIND, name, record)


def _transform_all(req: dict, url: str, log_path: Path) -> None:
    tin = req["TransformInput"]
    objects = _objects(tin["DataSource"]["S3DataSource"]["S3Uri"])
    if not objects:
        raise JobFailed(f"ClientError: no input objects under TransformInput S3Uri {tin['DataSource']['S3DataSource']['S3Uri']}")
    transform, invoke = Transform(req), Invoker(url, req, log_path)
    out_prefix = req["TransformOutput"]["S3OutputPath"].rstrip("/")
    for path, key in objects:
        out_uri = f"{out_prefix}/{key}.out"
        atomic_write(local_path(out_uri), transform.run(path.read_bytes(), key, invoke))
        log.info("transformed %s -> %s", key, out_uri)


def run_transform_job(req: dict, model_record: dict, control: ControlPlane | None = None) -> dict:
    """Run the batch transform for a ``CreateModel`` record; return ``DescribeTransformJob``."""
    validate_request("sagemaker", "CreateTransformJob", req)
    transform_request.check(req)
    control = control or ControlPlane()
    name = req["TransformJobName"]
    existing = control.reuse(KIND, name, req, "TransformJobStatus")
    if existing is not None:
        return existing
    record = _begin(req, control)
    log_path = control.work_dir(KIND, name) / "container.log"
    server = None
    try:
        server = containers.start(model_record["PrimaryContainer"], name, log_path, environment=req.get("Environment"))
        _transform_all(req, server.url, log_path)
        record.update(TransformJobStatus="Completed", TransformEndTime=now())
    except BaseException as e:
        reason = str(e) if isinstance(e, JobFailed) else f"InternalServerError: {type(e).__name__}: {e}"
        record.update(TransformJobStatus="Failed", FailureReason=reason, TransformEndTime=now())
        control.put(KIND, name, record)
        raise
    finally:
        if server is not None:
            containers.stop(server.pid)
    return control.put(KIND, name, record)
