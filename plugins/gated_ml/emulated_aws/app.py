"""The emulator's WSGI application: moto's server app with faults, guards, extensions, job runners and the runtime.

For each call (identified by ``X-Amz-Target`` or, for ``InvokeEndpoint``, the runtime path):

1. an armed ``reject`` fault answers it with its error (:mod:`.faults`);
2. ``InvokeEndpoint`` goes to the endpoint's model server, the calls moto lacks to
   :data:`.extensions.EXTENSIONS`, and guards (:data:`.extensions.GUARDS`) may refuse it;
3. otherwise moto answers it, and when moto accepted a call that starts a job, the job's
   runner starts (:mod:`.jobs`, :mod:`.glue_runs`, :mod:`.endpoints`) before the answer leaves.

Calls answered here are written to moto's request recording like the others. The control API
under ``/_emulator/`` (loopback only, like the server): ``GET health``, ``GET|POST|DELETE faults``,
``GET endpoints/<name>`` (the local URL behind an endpoint).
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass

from gated_ml.emulated_aws import endpoints, extensions, glue_runs, jobs, moto_backends
from gated_ml.emulated_aws.faults import Faults
from gated_ml.emulated_aws.responses import AwsError, Response, error, ok
from gated_ml.errors import RequestValidationError

log = logging.getLogger(__name__)
_SERVICES = {"SageMaker": "sagemaker", "AWSGlue": "glue"}
_INVOKE = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/")
RECORDED_REQUESTS = {"CreateModel": "ModelName", "CreateEndpointConfig": "EndpointConfigName"}  # the requests an endpoint's start reads


@dataclass
class Call:
    service: str
    action: str
    region: str
    params: dict


def identify(environ, body: bytes) -> Call | None:
    """The AWS call a request makes, for the services the emulator extends; ``None`` for all else (moto answers)."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    region = scope["region"] if scope else "us-east-1"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix, _, action = target.partition(".")
    if prefix in _SERVICES:
        return Call(_SERVICES[prefix], action, region, json.loads(body or b"{}"))
    invoke = _INVOKE.match(environ.get("PATH_INFO", ""))
    if invoke and environ.get("REQUEST_METHOD") == "POST" and (not scope or scope["service"] == "sagemaker"):
        return Call("sagemaker-runtime", "InvokeEndpoint", region, {"EndpointName": invoke["name"]})
    return None


class EmulatorApp:
    def __init__(self, moto_app):
        self.moto = moto_app
        self.faults = Faults()
        self.requests: dict[tuple[str, str], dict] = {}  # (action, name) -> the request the client sent

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_emulator/"):
            return self.control(environ)(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        call = identify(environ, body)
        if call is None:
            return self.moto(environ, start_response)
        try:
            answer = self.answer_here(call, environ, body)
        except AwsError as e:
            answer = e.response()
        if answer is not None:
            _record(environ, body)
            return answer(environ, start_response)
        return self.through_moto(call, environ, start_response)

    def answer_here(self, call: Call, environ, body: bytes) -> Response | None:
        """A fault's, an extension's or a guard's answer, or ``None`` to let moto answer."""
        fault = self.faults.take(call.action, "reject")
        if fault is not None:
            log.info("fault: %s answered %s %s", call.action, fault.status, fault.code)
            return error(fault.code, fault.message, fault.status)
        if call.action == "InvokeEndpoint":
            headers = {"Content-Type": environ.get("CONTENT_TYPE", ""), "Accept": environ.get("HTTP_ACCEPT", "")}
            return endpoints.invoke(call.region, call.params["EndpointName"], body, headers)
        extension = extensions.EXTENSIONS.get((call.service, call.action))
        if extension is not None:
            return ok(extension(call.region, call.params, self))
        guard = extensions.GUARDS.get((call.service, call.action))
        if guard is not None:
            guard(call.region, call.params, self)
        return None

    def through_moto(self, call: Call, environ, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return lambda data: None  # moto's app returns its body; it never writes

        chunks = b"".join(self.moto(environ, capture))
        if captured["status"].startswith("200"):
            self.after_accepted(call, chunks)
        start_response(captured["status"], captured["headers"])
        return [chunks]

    def after_accepted(self, call: Call, answer: bytes) -> None:
        """Start what moto only recorded: the job's runner (moto made it ``Completed``; the runner makes it ``InProgress`` first)."""
        p, action = call.params, call.action
        if action in RECORDED_REQUESTS:
            self.requests[(action, p[RECORDED_REQUESTS[action]])] = p
        fault = self.faults.take(action, "fail_job")
        reason = fault.message if fault else None
        if action == "CreateTrainingJob":
            jobs.start_training(call.region, p, reason)
        elif action == "CreateHyperParameterTuningJob":
            jobs.start_tuning(call.region, p, reason)
        elif action == "CreateTransformJob":
            jobs.start_transform(call.region, p, reason)
        elif action == "CreateEndpoint":
            endpoints.start(call.region, p["EndpointName"], p["EndpointConfigName"], self.requests, updating=False, fail_reason=reason)
        elif action == "DeleteEndpoint":
            endpoints.delete(p["EndpointName"])
        elif action == "StartJobRun":
            glue_runs.start(call.region, p["JobName"], json.loads(answer)["JobRunId"], reason)

    # --- the control API ----------------------------------------------------------------------
    def control(self, environ) -> Response:
        path, method = environ["PATH_INFO"][len("/_emulator/") :], environ["REQUEST_METHOD"]
        if path == "health":
            from gated_ml.emulated_aws import background

            return ok({"moto": moto_backends.installed_moto_version(), "running": background.running()})
        if path == "faults":
            return self.control_faults(environ, method)
        if path.startswith("endpoints/"):
            from gated_ml.local.control_plane import ControlPlane

            record = ControlPlane().get("endpoints", path.split("/", 1)[1])
            return (
                ok({"url": record["Url"], "endpoint_config": record["EndpointConfigName"]})
                if record
                else error("ResourceNotFound", f"no local endpoint {path}", 404)
            )
        return error("UnknownOperationException", f"no emulator control path /_emulator/{path}", 404)

    def control_faults(self, environ, method: str) -> Response:
        if method == "GET":
            return ok(self.faults.report())
        if method == "DELETE":
            self.faults.clear()
            return ok(self.faults.report())
        try:
            fault = self.faults.arm(**json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))))
        except (TypeError, ValueError, RequestValidationError) as e:
            return error("ValidationException", f"fault not armed: {e}; give action, and optionally kind, code, status, message, times")
        return ok({"armed": fault.action, "kind": fault.kind, "times": fault.times})


def _record(environ, body: bytes) -> None:
    """Write a call the emulator answered itself to moto's recording (so the recording holds every call made)."""
    from moto.core.request import Request
    from moto.moto_api import recorder

    environ["wsgi.input"] = io.BytesIO(body)
    recorder._record_request(Request(environ), body=body)
