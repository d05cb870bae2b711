"""The local inference container: the entry point's handlers behind SageMaker's HTTP contract.

Run as ``python -m gated_ml.local.model_server --model-data <model.tar.gz> --code
<sourcedir.tar.gz> --program inference.py --port 0 --ready-file <json>``. It answers
``GET /ping`` and ``POST /invocations`` as the XGBoost framework container does
(:mod:`gated_ml.local.framework_handlers`: batch transform posts here, up to 100 MB), and
``POST /endpoints/<name>/invocations`` as the SageMaker runtime does
(:mod:`gated_ml.local.runtime_api`: the 6 MB limit, ``ModelError`` 424 for a container
error), so a stock boto3 ``sagemaker-runtime`` client pointed at it with ``endpoint_url``
works unchanged. Bound to 127.0.0.1 only. The container's log (tracebacks of handler
errors) is this process's output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import tarfile
import tempfile
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from gated_ml.local import framework_handlers, runtime_api

MAX_TRANSFORM_PAYLOAD_BYTES = 100 * 1024 * 1024  # MaxPayloadInMB cannot exceed 100 (CreateTransformJob)


def load_handler(model_data: Path, code: Path, program: str, workdir: Path):
    """Unpack the artifacts, import the entry point, check its handlers and call its ``model_fn``."""
    model_dir, code_dir = workdir / "model", workdir / "code"
    for archive, dest in ((model_data, model_dir), (code, code_dir)):
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location("inference_entry_point", code_dir / program)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    framework_handlers.check_entry_point(module)
    return module, module.model_fn(str(model_dir))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a boto3 client reuses its connection
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this each reply waits ~40 ms for an ACK
    server_version = "gated-ml-model-server"
    module = None
    model = None
    endpoint_name = None
    variant_name = None
    region = None
    log_hint = None

    def log_message(self, fmt, *args):  # quiet by default; errors are logged explicitly
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self, message: str):
        self._send(404, json.dumps({"ErrorCode": HTTPStatus.NOT_FOUND.phrase, "Message": message}).encode(), {"Content-Type": "application/json"})

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, b"", {"Content-Type": "text/plain"})
        else:
            self._not_found(f"no such path {self.path}; use GET /ping")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.path == "/invocations":
            self._invocations(length)
        elif self.path.startswith("/endpoints/") and self.path.endswith("/invocations"):
            self._runtime_invocations(unquote(self.path.removeprefix("/endpoints/").removesuffix("/invocations")), length)
        else:
            self._drain(length)
            self._not_found(f"no such path {self.path}; use /invocations or /endpoints/{self.endpoint_name}/invocations")

    def _container_answer(self, body: bytes) -> framework_handlers.Answer:
        content_type = framework_handlers.request_content_type(self.headers)
        accept = framework_handlers.request_accept(self.headers)
        return framework_handlers.invoke(self.module, self.model, body, content_type, accept)

    def _invocations(self, length: int):
        """The container contract (batch transform's path)."""
        if length > MAX_TRANSFORM_PAYLOAD_BYTES:
            self._drain(length)
            self._send(413, b"request body exceeds 100 MB", {"Content-Type": "text/plain"})
            return
        answer = self._container_answer(self.rfile.read(length))
        self._send(answer.status, answer.body, {"Content-Type": answer.content_type})

    def _runtime_invocations(self, endpoint: str, length: int):
        """``InvokeEndpoint``: the runtime's checks, then the container's answer as the runtime returns it."""
        if endpoint != self.endpoint_name:
            self._drain(length)
            reply = runtime_api.endpoint_not_found(endpoint)
        elif length > runtime_api.MAX_PAYLOAD_BYTES:
            self._drain(length)
            reply = runtime_api.payload_too_large(length)
        else:
            a = self._container_answer(self.rfile.read(length))
            reply = runtime_api.answer(
                a.status, a.body, a.content_type, region=self.region, endpoint=endpoint, variant=self.variant_name, log_hint=self.log_hint
            )
        self._send(reply.status, reply.body, reply.headers)

    def _drain(self, length: int):
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)


def serve(model_data: Path, code: Path, program: str, port: int, endpoint_name: str, ready_file: Path | None, variant_name: str, region: str):
    with tempfile.TemporaryDirectory(prefix="gated-ml-server-") as tmp:
        module, model = load_handler(model_data, code, program, Path(tmp))
        attrs = {"module": module, "model": model, "endpoint_name": endpoint_name, "variant_name": variant_name, "region": region, "log_hint": _log_hint()}
        handler = type("Handler", (_Handler,), attrs)
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        if ready_file:
            tmp_ready = ready_file.with_suffix(".tmp")
            tmp_ready.write_text(json.dumps({"port": server.server_address[1], "pid": os.getpid()}))
            os.replace(tmp_ready, ready_file)
        print(f"model server for {endpoint_name} on http://127.0.0.1:{server.server_address[1]}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def _log_hint() -> str:
    """Where this container's log is (its stdout, a file when started by :mod:`gated_ml.local.containers`)."""
    try:
        return os.readlink("/proc/self/fd/1")
    except OSError:
        return "the model server's output"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model-data", type=Path, required=True)
    p.add_argument("--code", type=Path, required=True)
    p.add_argument("--program", default="inference.py")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--endpoint-name", default="local")
    p.add_argument("--variant-name", default="AllTraffic")
    p.add_argument("--region", default="us-east-1", help="the region of the endpoint's log stream ARN")
    p.add_argument("--ready-file", type=Path)
    a = p.parse_args(argv)
    serve(a.model_data, a.code, a.program, a.port, a.endpoint_name, a.ready_file, a.variant_name, a.region)


if __name__ == "__main__":
    main()
