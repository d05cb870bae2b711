"""SageMaker endpoints moto records but does not serve: the local router and model server behind each.

``CreateEndpoint`` and ``UpdateEndpoint`` stage the model's artifact and code from moto's S3 and
point the local endpoint (:func:`gated_ml.local.hosting.create_or_update_endpoint`: a stable
router in front of a model-server process) at the new endpoint config; the endpoint is
``Creating``/``Updating`` meanwhile and ``InService`` last. An update that fails leaves the
previous config serving (the endpoint back ``InService`` on it, with a ``FailureReason``);
a create that fails ends ``Failed``. ``InvokeEndpoint`` is forwarded to the endpoint's router,
its status, content type and body passed back unchanged.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

from gated_ml.emulated_aws import background, moto_backends, staging
from gated_ml.emulated_aws.responses import AwsError, Response
from gated_ml.local import hosting
from gated_ml.local.control_plane import ControlPlane, now

log = logging.getLogger(__name__)


def _local_records(backend, config_name: str, requests: dict) -> None:
    """The local control plane's model and endpoint-config records, from the requests the client sent moto."""
    config = requests[("CreateEndpointConfig", config_name)]
    for variant in config["ProductionVariants"]:
        model = requests[("CreateModel", variant["ModelName"])]
        container = model["PrimaryContainer"]
        staging.stage_in_all([container["ModelDataUrl"], container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]])
        hosting.create_model(model)
    hosting.create_endpoint_config(config)


def start(region: str, name: str, config_name: str, requests: dict, updating: bool, fail_reason: str | None = None) -> None:
    """Bring the endpoint ``name`` to serve ``config_name`` in the background (moto has already recorded the call)."""
    backend = moto_backends.sagemaker(region)
    endpoint = backend.endpoints[name]
    previous = endpoint.endpoint_config_name if updating else None
    endpoint.endpoint_status, endpoint.failure_reason = ("Updating" if updating else "Creating"), None

    def finish(status: str, served: str, reason: str | None = None) -> None:
        endpoint.endpoint_config_name = served
        endpoint.production_variants = endpoint._process_production_variants(backend.endpoint_configs[served].production_variants)
        endpoint.failure_reason = reason
        endpoint.last_modified_time = now()
        endpoint.endpoint_status = status  # last

    def failed(reason: str) -> None:
        if previous:
            finish("InService", previous, f"Update failed, rolled back to {previous}: {reason}")
        else:
            finish("Failed", config_name, reason)

    def work():
        if fail_reason:
            return failed(fail_reason)
        _local_records(backend, config_name, requests)
        hosting.create_or_update_endpoint({"EndpointName": name, "EndpointConfigName": config_name}, ControlPlane())
        finish("InService", config_name)

    background.start(f"endpoint {name}", work, failed)


def delete(name: str) -> None:
    hosting.delete_endpoint(name, ControlPlane())


def delete_all() -> list[str]:
    """Stop every local endpoint's processes (the emulator's shutdown)."""
    folder = ControlPlane().root / "endpoints"
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    for name in names:
        delete(name)
    return names


def invoke(region: str, name: str, body: bytes, headers: dict[str, str]) -> Response:
    """``InvokeEndpoint``: forwarded to the endpoint's router; errors as the runtime answers them."""
    endpoint = moto_backends.sagemaker(region).endpoints.get(name)
    if endpoint is None:
        raise AwsError("ValidationError", f"Endpoint {name} of account {moto_backends.ACCOUNT} not found.")
    if endpoint.endpoint_status not in ("InService", "Updating"):
        raise AwsError("ValidationError", f"Endpoint {name} of account {moto_backends.ACCOUNT} is not InService (it is {endpoint.endpoint_status}).")
    record = ControlPlane().get("endpoints", name)
    if record is None:
        raise AwsError("ServiceUnavailable", f"Endpoint {name} has no model server running.", 503)
    forwarded = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
    request = urllib.request.Request(f"{record['Url']}/endpoints/{name}/invocations", data=body, method="POST", headers=forwarded)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return Response(r.status, r.read(), {"Content-Type": r.headers.get("Content-Type", "application/octet-stream")})
    except urllib.error.HTTPError as e:
        answer = e.read()
        return Response(e.code, answer, {k: v for k, v in e.headers.items() if k.lower() in ("content-type", "x-amzn-errortype")})
