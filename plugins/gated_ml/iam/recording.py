"""The requests of a moto recording (``MOTO_RECORDER_FILEPATH``), as (service, operation, parameters).

JSON-protocol services (SageMaker, Glue, CloudWatch Logs) name the operation in
``X-Amz-Target`` and carry the parameters as JSON; S3 and the SageMaker runtime are REST, so
their operation is read from the method, the path and the query. A request of a shape this
module does not know is returned as operation ``?`` so that the check reports it instead of
passing it silently.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Request:
    service: str  # the signing name: s3, sagemaker, glue, logs, ...
    operation: str
    params: dict = field(default_factory=dict)


def _body(record: dict) -> str:
    body = record.get("body") or ""
    return base64.b64decode(body).decode(errors="replace") if record.get("body_encoded") else body


def _s3(method: str, path: str, query: dict, headers: dict) -> Request:
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    where = {"Bucket": bucket, **({"Key": key} if key else {})}
    if not key:
        if method == "GET" and ("list-type" in query or not query):
            return Request("s3", "ListObjectsV2", {**where, "Prefix": query.get("prefix", [""])[0]})
        return Request("s3", {"HEAD": "HeadBucket"}.get(method, "?"), where)
    if method in ("GET", "HEAD"):
        return Request("s3", "GetObject" if method == "GET" else "HeadObject", where)
    if method == "PUT" and "x-amz-copy-source" in headers:
        return Request("s3", "CopyObject", {**where, "CopySource": unquote(headers["x-amz-copy-source"])})
    if method in ("PUT", "POST") and ("uploadId" in query or "uploads" in query or method == "PUT"):
        return Request("s3", "PutObject", {**where, "SSEKMSKeyId": headers.get("x-amz-server-side-encryption-aws-kms-key-id")})
    if method == "DELETE":
        return Request("s3", "DeleteObject", where)
    return Request("s3", "?", {**where, "Method": method})


def parse(record: dict) -> Request | None:
    """One recorded request; ``None`` for requests no IAM policy governs (moto's own API, STS identity)."""
    headers = {k.lower(): v for k, v in record["headers"].items()}
    url = urlsplit(record["url"])
    if url.path.startswith("/moto-api"):
        return None
    auth = headers.get("authorization", "")
    service = auth.split("Credential=")[-1].split("/")[3] if "Credential=" in auth else ""
    if target := headers.get("x-amz-target"):
        body = _body(record)
        return Request(service, target.split(".", 1)[1], json.loads(body) if body else {})
    if service == "s3":
        return _s3(record["method"], url.path, parse_qs(url.query, keep_blank_values=True), headers)
    parts = url.path.strip("/").split("/")
    if service == "sagemaker" and len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
        return Request("sagemaker", "InvokeEndpoint", {"EndpointName": unquote(parts[1])})
    action = parse_qs(_body(record)).get("Action", ["?"])[0]
    if service == "sts" and action == "GetCallerIdentity":
        return None  # never needs a permission
    return Request(service, action, {})


def requests(recording: str) -> list[Request]:
    """Every request of a recording (one JSON record a line), in order."""
    return [r for line in recording.splitlines() if line.strip() and (r := parse(json.loads(line))) is not None]
