"""The local endpoint's front door: a stable loopback port that forwards to the current model server.

As on SageMaker, an endpoint outlives the instances behind it. The router answers
``GET /ping`` and the invocation paths on a port that never changes, and forwards each
request to the model server currently in service. ``PUT /_local/backend`` (loopback
only, like everything here) switches to another model server in one assignment: a
request is forwarded to either the old or the new server, never to none. The caller
stops the old server only after the switch, once its in-flight requests are done.

Run as ``python -m gated_ml.local.router --endpoint-name N --backend URL --port 0 --ready-file F``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from gated_ml.local import runtime_api

FORWARDED = {"content-type", "x-amzn-errortype", "x-amzn-invoked-production-variant"}  # the response headers of InvokeEndpoint


class _State:
    def __init__(self, backend: str):
        self.backend = backend  # replaced as a whole: readers see the old or the new URL
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        """A keep-alive connection to the current backend, one per router thread."""
        backend = self.backend
        conn = getattr(self.local, "conn", None)
        if conn is None or getattr(self.local, "backend", None) != backend:
            if conn is not None:
                conn.close()
            parts = urlsplit(backend)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn, self.local.backend = conn, backend
        return conn


class _Router(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see model_server: no delayed-ACK wait between headers and body
    state: _State = None
    endpoint_name: str = ""

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str]):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self, method: str, body: bytes | None):
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
        for attempt in (1, 2):  # a kept-alive connection the old backend closed: retry once on a fresh one
            conn = self.state.connection()
            try:
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self.state.local.conn = None
                if attempt == 2:
                    self._reply(
                        503,
                        json.dumps({"Message": "no model server answered"}).encode(),
                        {"Content-Type": "application/json", "x-amzn-ErrorType": "ServiceUnavailable"},
                    )
                    return
        self._reply(resp.status, data, {k: v for k, v in resp.getheaders() if k.lower() in FORWARDED})

    def do_GET(self):
        if self.path == "/_local/backend":
            self._reply(200, json.dumps({"backend": self.state.backend}).encode(), {"Content-Type": "application/json"})
        else:
            self._forward("GET", None)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > runtime_api.MAX_PAYLOAD_BYTES:
            reply = runtime_api.payload_too_large(length)
            self._reply(reply.status, reply.body, reply.headers)
            self.close_connection = True
            return
        self._forward("POST", self.rfile.read(length))

    def do_PUT(self):
        if self.path != "/_local/backend":
            self._reply(404, b"{}", {"Content-Type": "application/json"})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.state.backend = body["backend"]
        self._reply(200, json.dumps({"backend": self.state.backend}).encode(), {"Content-Type": "application/json"})


def serve(endpoint_name: str, backend: str, port: int, ready_file: Path | None):
    handler = type("Router", (_Router,), {"state": _State(backend), "endpoint_name": endpoint_name})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if ready_file:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": server.server_address[1], "pid": os.getpid()}))
        os.replace(tmp, ready_file)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint-name", required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-file", type=Path)
    a = p.parse_args(argv)
    serve(a.endpoint_name, a.backend, a.port, a.ready_file)


if __name__ == "__main__":
    main()
