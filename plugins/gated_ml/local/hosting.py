"""``CreateModel``, ``CreateEndpointConfig`` and ``CreateEndpoint``/``UpdateEndpoint`` on this machine.

An endpoint is a detached model-server process on a loopback port, recorded in the
control plane with its URL and pid; it keeps serving after the DAG run ends, until
``make stop-endpoint`` (or :func:`delete_endpoint`). Updating an endpoint starts the new
model's server, checks it is healthy, records it, and only then stops the old one.
"""

from __future__ import annotations

import logging

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
            raise ValueError(f"endpoint config {name}: model {v['ModelName']} does not exist")
    return control.put("endpoint-configs", name, {**req, "Request": req, "EndpointConfigArn": control.arn("endpoint-configs", name), "CreationTime": now()})


def describe_endpoint(name: str, control: ControlPlane | None = None) -> dict | None:
    record = (control or ControlPlane()).get("endpoints", name)
    if record and record.get("EndpointStatus") == "InService" and not containers.ping(record["Url"]):
        record["EndpointStatus"] = "OutOfService"
    return record


def create_or_update_endpoint(req: dict, control: ControlPlane | None = None) -> dict:
    """Point the endpoint at ``EndpointConfigName``: start it, or replace its server after a health check."""
    validate_request("sagemaker", "CreateEndpoint", req)
    control = control or ControlPlane()
    name, config_name = req["EndpointName"], req["EndpointConfigName"]
    config = control.get("endpoint-configs", config_name)
    if config is None:
        raise ValueError(f"endpoint config {config_name} does not exist")
    model = control.get("models", config["ProductionVariants"][0]["ModelName"])
    old = describe_endpoint(name, control)
    if old and old["EndpointConfigName"] == config_name and old["EndpointStatus"] == "InService":
        log.info("endpoint %s already serves %s", name, config_name)
        return old
    log_path = control.root / "endpoints" / f"{name}.log"
    server = containers.start(model["PrimaryContainer"], name, log_path, detach=True)
    record = {
        "EndpointName": name,
        "EndpointArn": control.arn("endpoints", name),
        "EndpointConfigName": config_name,
        "EndpointStatus": "InService",
        "ProductionVariants": [{"VariantName": v["VariantName"], "CurrentInstanceCount": v["InitialInstanceCount"]} for v in config["ProductionVariants"]],
        "CreationTime": old["CreationTime"] if old else now(),
        "LastModifiedTime": now(),
        "Url": server.url,
        "Pid": server.pid,
        "Log": str(log_path),
        "PreviousEndpointConfigName": old["EndpointConfigName"] if old else None,
    }
    control.put("endpoints", name, record)
    if old and old.get("Pid"):
        containers.stop(old["Pid"])
    return record


def delete_endpoint(name: str, control: ControlPlane | None = None) -> bool:
    control = control or ControlPlane()
    record = control.get("endpoints", name)
    if record is None:
        return False
    if record.get("Pid"):
        containers.stop(record["Pid"])
    control.path("endpoints", name).unlink(missing_ok=True)
    return True
