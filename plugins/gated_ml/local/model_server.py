"""The local inference container: the entry point's handlers behind SageMaker's HTTP contract.

Run as ``python -m gated_ml.local.model_server --model-data <model.tar.gz> --code
<sourcedir.tar.gz> --program inference.py --port 0 --ready-file <json>``. It answers
``GET /ping``, ``POST /invocations`` (the container contract, used by batch transform)
and ``POST /endpoints/<name>/invocations`` (the runtime API path, so a stock boto3
``sagemaker-runtime`` client pointed at it with ``endpoint_url`` works unchanged).
Bound to 127.0.0.1 only; bodies over the 6 MB payload limit are refused with 413.
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
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def load_handler(model_data: Path, code: Path, program: str, workdir: Path):
    """Unpack the artifacts, import the entry point and call its ``model_fn``."""
    model_dir, code_dir = workdir / "model", workdir / "code"
    for archive, dest in ((model_data, model_dir), (code, code_dir)):
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location("inference_entry_point", code_dir / program)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.model_fn(str(model_dir))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a boto3 client reuses its connection
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this each reply waits ~40 ms for an ACK
    server_version = "gated-ml-model-server"
    module = None
    model = None
    endpoint_name = None

    def log_message(self, fmt, *args):  # quiet by default; errors are logged explicitly
        pass

    def _send(self, status: int, body: bytes | str, content_type: str = "application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str):
        self._send(status, json.dumps({"ErrorCode": HTTPStatus(status).phrase, "Message": message}))

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, b"", "text/plain")
        else:
            self._error(404, f"no such path {self.path}; use GET /ping")

    def do_POST(self):
        valid = {"/invocations", f"/endpoints/{self.endpoint_name}/invocations"}
        if self.path not in valid:
            self._error(404, f"no such path {self.path}; use one of {sorted(valid)}")
            self._drain()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self._drain()
            self._error(413, f"request body of {length} bytes exceeds the {MAX_PAYLOAD_BYTES} byte payload limit")
            return
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "text/csv")
        accept = self.headers.get("Accept") or content_type
        if accept in ("*/*", "", None) or accept.startswith("application/octet"):
            accept = "text/csv"
        m = self.module
        try:
            data = m.input_fn(body, content_type)
            prediction = m.predict_fn(data, self.model)
            out, out_type = m.output_fn(prediction, accept)
        except ValueError as e:  # the entry point's InputError and other bad-input errors
            self._error(400, str(e))
            return
        except Exception as e:  # noqa: BLE001 (the server's boundary: any error of the entry point is an answer, not a crash)
            traceback.print_exc()
            self._error(500, f"{type(e).__name__}: {e}")
            return
        self._send(200, out, out_type)

    def _drain(self):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)


def serve(model_data: Path, code: Path, program: str, port: int, endpoint_name: str, ready_file: Path | None):
    with tempfile.TemporaryDirectory(prefix="gated-ml-server-") as tmp:
        module, model = load_handler(model_data, code, program, Path(tmp))
        handler = type("Handler", (_Handler,), {"module": module, "model": model, "endpoint_name": endpoint_name})
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model-data", type=Path, required=True)
    p.add_argument("--code", type=Path, required=True)
    p.add_argument("--program", default="inference.py")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--endpoint-name", default="local")
    p.add_argument("--ready-file", type=Path)
    a = p.parse_args(argv)
    serve(a.model_data, a.code, a.program, a.port, a.endpoint_name, a.ready_file)


if __name__ == "__main__":
    main()
