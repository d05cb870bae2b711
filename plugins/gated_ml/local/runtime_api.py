"""The SageMaker runtime's ``InvokeEndpoint`` answer, made from what the model container answered.

botocore's ``sagemaker-runtime`` service model is the contract: a 2xx from the container is
passed through with ``x-Amzn-Invoked-Production-Variant``; any other status becomes the
modeled error ``ModelError`` (HTTP 424, ``x-amzn-ErrorType: ModelError``) carrying
``OriginalStatusCode``, ``OriginalMessage`` (the container's body) and ``LogStreamArn``,
with the message SageMaker writes (``Received client error (415) from <variant> with
message "...". See <logs> in account <id> for more information.``). A request for another
endpoint name is the runtime's ``ValidationError`` (400). A stock boto3 client raises
``client.exceptions.ModelError`` / ``ValidationError`` from these answers, as on AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

ACCOUNT = "000000000000"  # the local control plane's account (control_plane.ControlPlane.arn)
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request payload limit


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def log_stream_arn(region: str, endpoint: str, variant: str) -> str:
    return f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{endpoint}:log-stream:{variant}/local"


def _error(status: int, error_type: str, payload: dict) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", "x-amzn-ErrorType": error_type})


def model_error(status: int, body: bytes, *, region: str, endpoint: str, variant: str, log_hint: str) -> Reply:
    """``ModelError`` (424) for a container answer with a non-2xx ``status``."""
    original = body.decode("utf-8", errors="replace")
    kind = "client" if status < 500 else "server"
    message = f'Received {kind} error ({status}) from {variant} with message "{original}". See {log_hint} in account {ACCOUNT} for more information.'
    payload = {"Message": message, "OriginalStatusCode": status, "OriginalMessage": original, "LogStreamArn": log_stream_arn(region, endpoint, variant)}
    return _error(424, "ModelError", payload)


def endpoint_not_found(name: str) -> Reply:
    return _error(400, "ValidationError", {"Message": f"Endpoint {name} of account {ACCOUNT} not found."})


def payload_too_large(length: int) -> Reply:
    return _error(413, "PayloadTooLarge", {"Message": f"request body of {length} bytes exceeds the {MAX_PAYLOAD_BYTES} byte payload limit of InvokeEndpoint"})


def answer(status: int, body: bytes, content_type: str, *, region: str, endpoint: str, variant: str, log_hint: str) -> Reply:
    """The runtime's reply to the client for the container's ``(status, body, content_type)``."""
    if 200 <= status < 300:
        return Reply(status, body, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant})
    return model_error(status, body, region=region, endpoint=endpoint, variant=variant, log_hint=log_hint)
