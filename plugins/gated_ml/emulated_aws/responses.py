"""AWS-shaped answers the emulator gives itself (errors and small JSON results), as WSGI responses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, environ, start_response):
        reason = HTTPStatus(self.status).phrase if self.status in HTTPStatus._value2member_map_ else "Error"
        headers = {"Content-Length": str(len(self.body)), **self.headers}
        start_response(f"{self.status} {reason}", list(headers.items()))
        return [self.body]


def error(code: str, message: str, status: int = 400) -> Response:
    """An AWS JSON-protocol error: botocore reads the code from ``x-amzn-ErrorType`` and ``__type``."""
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return Response(status, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})


def ok(payload: dict | None = None) -> Response:
    return Response(200, json.dumps(payload or {}).encode(), {"Content-Type": "application/x-amz-json-1.1"})


class AwsError(Exception):
    """Raised by an extension or guard: answered as :func:`error` instead of passing the call to moto."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def response(self) -> Response:
        return error(self.code, self.message, self.status)
