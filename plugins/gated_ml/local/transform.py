"""``CreateTransformJob`` on this machine, with SageMaker's CSV batch-transform semantics.

As on SageMaker, the model runs in its inference container (a local model server) and
the transform agent posts records to ``/invocations``:
- each input file under the ``S3Prefix`` is split into records by ``SplitType: Line``;
- ``InputFilter`` (a JSONPath index such as ``$[1:]``) selects the fields sent to the model;
- ``BatchStrategy: MultiRecord`` packs records into requests of at most ``MaxPayloadInMB``;
- ``JoinSource: Input`` appends each prediction to its (unfiltered) input record;
- ``OutputFilter`` selects the fields kept; output is ``<S3OutputPath>/<file>.out``,
  records joined by lines (``AssembleWith: Line``).
A model that does not answer one output record per input record fails the job.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import urllib.request
from pathlib import Path

from gated_ml.errors import TransformError
from gated_ml.lake import atomic_write, local_path
from gated_ml.local import containers, s3
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)
KIND = "transform-jobs"
_FILTER = re.compile(r"^\$(\[(?P<items>[-0-9:, ]+)\])?$")


def csv_filter(expression: str | None):
    """Compile a SageMaker CSV JSONPath filter (``$``, ``$[1:]``, ``$[0,-1]``, ``$[1:3,5]``)."""
    if not expression or expression == "$":
        return lambda fields: fields
    m = _FILTER.match(expression.strip())
    if not m:
        raise ValueError(f"unsupported CSV filter {expression!r}; use $, $[i,j] or $[a:b]")
    items = []
    for part in m.group("items").split(","):
        part = part.strip()
        if ":" in part:
            a, b = part.split(":", 1)
            items.append(slice(int(a) if a else None, int(b) if b else None))
        else:
            items.append(int(part))

    def apply(fields: list[str]) -> list[str]:
        out: list[str] = []
        for item in items:
            out += fields[item] if isinstance(item, slice) else [fields[item]]
        return out

    return apply


def _parse(text: str) -> list[list[str]]:
    """CSV records; plain comma splitting when nothing is quoted (the common, numeric case)."""
    if '"' not in text:
        return [line.split(",") for line in text.splitlines() if line]
    return [r for r in csv.reader(io.StringIO(text)) if r]


def _format(rows: list[list[str]], quoted: bool) -> list[str]:
    """CSV lines; plain joining when no field needs quoting (known from the parsed text)."""
    if not quoted:
        return [",".join(r) for r in rows]
    out = []
    for r in rows:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(r)
        out.append(buf.getvalue())
    return out


def _batches(records: list[str], max_bytes: int, multi: bool):
    batch, size = [], 0
    for rec in records:
        n = len(rec.encode()) + 1
        if batch and (not multi or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(rec)
        size += n
    if batch:
        yield batch


def _invoke(url: str, body: str, content_type: str, accept: str) -> str:
    req = urllib.request.Request(f"{url}/invocations", data=body.encode(), method="POST", headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:
        raise TransformError(f"the model answered {e.code}: {e.read().decode(errors='replace')[:500]}") from None


def transform_file(path: Path, url: str, req: dict) -> str:
    tin, tout = req["TransformInput"], req["TransformOutput"]
    dp = req.get("DataProcessing", {})
    in_filter, out_filter = csv_filter(dp.get("InputFilter")), csv_filter(dp.get("OutputFilter"))
    join = dp.get("JoinSource", "None") == "Input"
    text = path.read_text()
    rows = _parse(text)
    sent = _format([in_filter(r) for r in rows], '"' in text)
    max_bytes = int(req.get("MaxPayloadInMB", 6)) * 1024 * 1024
    predictions: list[list[str]] = []
    quoted = '"' in text
    for batch in _batches(sent, max_bytes, req.get("BatchStrategy", "MultiRecord") == "MultiRecord"):
        answer = _invoke(url, "\n".join(batch) + "\n", tin.get("ContentType", "text/csv"), tout.get("Accept", "text/csv"))
        quoted = quoted or '"' in answer
        lines = _parse(answer)
        if len(lines) != len(batch):
            raise TransformError(f"{path.name}: the model returned {len(lines)} predictions for {len(batch)} records")
        predictions += lines
    out = [out_filter(r + p if join else p) for r, p in zip(rows, predictions, strict=True)]
    return "".join(line + "\n" for line in _format(out, quoted))


def run_transform_job(req: dict, model_record: dict, control: ControlPlane | None = None) -> dict:
    """Run the batch transform for a ``CreateModel`` record; return ``DescribeTransformJob``."""
    validate_request("sagemaker", "CreateTransformJob", req)
    control = control or ControlPlane()
    name = req["TransformJobName"]
    existing = control.reuse(KIND, name, req, "TransformJobStatus")
    if existing is not None:
        return existing
    tin = req["TransformInput"]
    if tin.get("SplitType", "None") != "Line" or tin.get("ContentType") != "text/csv":
        raise TransformError("the local target transforms text/csv input split by Line")
    files = s3.list_files(tin["DataSource"]["S3DataSource"]["S3Uri"])
    if not files:
        raise TransformError(f"no input files under {tin['DataSource']['S3DataSource']['S3Uri']}")
    record = {
        "TransformJobName": name,
        "TransformJobArn": control.arn(KIND, name),
        "ModelName": req["ModelName"],
        "TransformJobStatus": "InProgress",
        "CreationTime": now(),
        "Request": req,
    }
    control.put(KIND, name, record)
    work = control.work_dir(KIND, name)
    server = containers.start(model_record["PrimaryContainer"], name, work / "container.log")
    try:
        outputs = []
        for f in files:
            out_uri = req["TransformOutput"]["S3OutputPath"].rstrip("/") + f"/{f.name}.out"
            atomic_write(local_path(out_uri), transform_file(f, server.url, req))
            outputs.append(out_uri)
            log.info("transformed %s -> %s", f.name, out_uri)
        record.update(TransformJobStatus="Completed", TransformEndTime=now(), OutputFiles=outputs)
    except Exception as e:
        record.update(TransformJobStatus="Failed", FailureReason=f"{type(e).__name__}: {e}", TransformEndTime=now())
        control.put(KIND, name, record)
        raise
    finally:
        containers.stop(server.pid)
    return control.put(KIND, name, record)
