"""``CreateModel``, ``CreateEndpointConfig`` and ``CreateEndpoint``/``UpdateEndpoint`` on this machine.

An endpoint is a router on a stable loopback port (its URL never changes) in front of a
detached model-server process, both recorded in the control plane; it keeps serving
after the DAG run ends, until ``make stop-endpoint`` (or :func:`delete_endpoint`).
Updating an endpoint starts the new model's server, checks it, switches the router to
it and only then stops the old server: no request fails, and a new model that fails its
checks never takes traffic.
"""

from __future__ import annotations

import logging
import time

from gated_ml.errors import ResourceNotFound
from gated_ml.local import containers
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)


def create_model(req: dict, control: ControlPlane | None = None) -> dict:
    validate_request("sagemaker", "CreateModel", req)
    control = control or ControlPlane()
    name = req["ModelName"]
    existing = control.reuse("models", name, req)
    if existing is not None:
        return existing
    return control.put("models", name, {**req, "Request": req, "ModelArn": control.arn("models", name), "CreationTime": now()})


def create_endpoint_config(req: dict, control: ControlPlane | None = None) -> dict:
    validate_request("sagemaker", "CreateEndpointConfig", req)
    control = control or ControlPlane()
    name = req["EndpointConfigName"]
    existing = control.reuse("endpoint-configs", name, req)  # never changed in place
    if existing is not None:
        return existing
    for v in req["ProductionVariants"]:
        if control.get("models", v["ModelName"]) is None:
            raise ResourceNotFound(f"endpoint config {name}: model {v['ModelName']} does not exist")
    return control.put("endpoint-configs", name, {**req, "Request": req, "EndpointConfigArn": control.arn("endpoint-configs", name), "CreationTime": now()})


def describe_endpoint(name: str, control: ControlPlane | None = None) -> dict | None:
    record = (control or ControlPlane()).get("endpoints", name)
    if record and record.get("EndpointStatus") == "InService" and not containers.ping(record["Url"]):
        record["EndpointStatus"] = "OutOfService"
    return record


def create_or_update_endpoint(req: dict, control: ControlPlane | None = None, verify=None, grace_seconds: float = 1.0) -> dict:
    """Point the endpoint at ``EndpointConfigName`` without a failed request.

    The new model's server starts beside the old one and must pass its health check and
    ``verify(url)`` (the smoke test) before it takes traffic; if it does not, it is
    stopped, the old one keeps serving, and the error is raised (rollback). Then the
    endpoint's router switches to it, and the old server stops after ``grace_seconds``.
    """
    validate_request("sagemaker", "CreateEndpoint", req)
    control = control or ControlPlane()
    name, config_name = req["EndpointName"], req["EndpointConfigName"]
    config = control.get("endpoint-configs", config_name)
    if config is None:
        raise ResourceNotFound(f"endpoint config {config_name} does not exist")
    variant = config["ProductionVariants"][0]
    model = control.get("models", variant["ModelName"])
    old = describe_endpoint(name, control)
    if old and old["EndpointConfigName"] == config_name and old["EndpointStatus"] == "InService":
        log.info("endpoint %s already serves %s", name, config_name)
        return old
    logs = control.root / "endpoints" / name
    backend = containers.start(model["PrimaryContainer"], name, logs / f"{config_name}.log", detach=True, variant_name=variant["VariantName"])
    try:
        if verify is not None:
            verify(backend.url)
    except BaseException:
        containers.stop(backend.pid)
        log.error(
            "endpoint %s: %s failed its smoke test; %s", name, config_name, f"{old['EndpointConfigName']} keeps serving" if old else "nothing was deployed"
        )
        raise
    if old and old["EndpointStatus"] == "InService":
        containers.switch(old["Url"], backend.url)
        router_pid, url = old["Pid"], old["Url"]
    else:
        if old:  # a stale record whose router is gone
            _stop_all(old)
        router = containers.start_router(name, backend.url, logs / "router.log")
        router_pid, url = router.pid, router.url
    record = {
        "EndpointName": name,
        "EndpointArn": control.arn("endpoints", name),
        "EndpointConfigName": config_name,
        "EndpointStatus": "InService",
        "ProductionVariants": [{"VariantName": v["VariantName"], "CurrentInstanceCount": v["InitialInstanceCount"]} for v in config["ProductionVariants"]],
        "CreationTime": old["CreationTime"] if old else now(),
        "LastModifiedTime": now(),
        "Url": url,
        "Pid": router_pid,
        "BackendUrl": backend.url,
        "BackendPid": backend.pid,
        "PreviousEndpointConfigName": old["EndpointConfigName"] if old else None,
    }
    control.put("endpoints", name, record)
    if old and old["EndpointStatus"] == "InService" and old.get("BackendPid"):
        time.sleep(grace_seconds)  # requests already forwarded to the old server finish
        containers.stop(old["BackendPid"])
    return record


def _stop_all(record: dict) -> None:
    for key in ("BackendPid", "Pid"):
        if record.get(key):
            containers.stop(record[key])


def delete_endpoint(name: str, control: ControlPlane | None = None) -> bool:
    control = control or ControlPlane()
    record = control.get("endpoints", name)
    if record is None:
        return False
    _stop_all(record)
    control.path("endpoints", name).unlink(missing_ok=True)
    return True


def runtime_client(url: str, max_attempts: int = 3):
    """A stock boto3 ``sagemaker-runtime`` client pointed at a local endpoint (``max_attempts=1``: no retries)."""
    import boto3
    from botocore.config import Config

    from gated_ml.settings import region

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name=region(),
        aws_access_key_id="local",
        aws_secret_access_key="local",  # loopback only: the server ignores signatures
        config=Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}),
    )
