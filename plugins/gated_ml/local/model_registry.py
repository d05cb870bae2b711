"""SageMaker's Model Registry on this machine: model package groups and their numbered versions.

``CreateModelPackage`` requests become records in the control plane
(``_control/model-package-groups/``, ``_control/model-packages/<group>-<version>``) holding
exactly the fields ``DescribeModelPackage`` answers with (no field AWS lacks). A version number
is claimed with an exclusive create, so two runs registering at once get two numbers; a
request with a ``ClientToken`` already used returns the package it made (SageMaker's
idempotency), so a retried task registers its model once.

:class:`ModelRegistryClient` answers the registry calls the pipeline makes with the method
names, arguments and answers of a boto3 ``sagemaker`` client, so code that reads approvals
takes either client.
"""

from __future__ import annotations

import json
import os

from gated_ml.errors import RequestValidationError, ResourceNotFound
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request

APPROVALS = ("Approved", "Rejected", "PendingManualApproval")
_NOT_DESCRIBED = ("ClientToken", "Tags")  # request fields DescribeModelPackage does not answer with


def packages(group: str, control: ControlPlane | None = None) -> list[dict]:
    """The versions of a model package group, oldest first."""
    control = control or ControlPlane()
    folder = control.root / "model-packages"
    texts = [p.read_text() for p in folder.glob(f"{group}-*.json")] if folder.is_dir() else []
    found = [json.loads(t) for t in texts if t]  # an empty file is a number claimed by a registration still writing
    return sorted((p for p in found if p.get("ModelPackageGroupName") == group), key=lambda p: p["ModelPackageVersion"])


def _ensure_group(group: str, control: ControlPlane) -> None:
    if control.get("model-package-groups", group) is None:
        control.put(
            "model-package-groups",
            group,
            {
                "ModelPackageGroupName": group,
                "ModelPackageGroupArn": control.arn("model-package-groups", group),
                "ModelPackageGroupStatus": "Completed",
                "CreationTime": now(),
            },
        )


def _claim_version(group: str, control: ControlPlane) -> int:
    version = 1 + max((p["ModelPackageVersion"] for p in packages(group, control)), default=0)
    while True:  # a concurrent registration that took the number first moves us to the next
        path = control.path("model-packages", f"{group}-{version}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return version
        except FileExistsError:
            version += 1


def create_model_package(request: dict, control: ControlPlane | None = None) -> dict:
    """``CreateModelPackage``; answers with the package's ``DescribeModelPackage`` record."""
    validate_request("sagemaker", "CreateModelPackage", request)
    control = control or ControlPlane()
    group = request["ModelPackageGroupName"]
    _ensure_group(group, control)
    token = request.get("ClientToken")
    if token is not None:
        earlier = control.get("model-package-tokens", token)
        if earlier is not None:
            return describe_model_package(earlier["ModelPackageArn"], control)
    version = _claim_version(group, control)
    record = {
        **{k: v for k, v in request.items() if k not in _NOT_DESCRIBED},
        "ModelPackageName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": control.arn("model-packages", f"{group}/{version}"),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "CreationTime": now(),
        "LastModifiedTime": now(),
    }
    control.put("model-packages", f"{group}-{version}", record)
    if token is not None:
        control.put("model-package-tokens", token, {"ModelPackageArn": record["ModelPackageArn"]})
    return record


def _key(name_or_arn: str) -> str:
    """``<group>-<version>`` from a versioned package ARN (``…:model-package/<group>/<version>``)."""
    if ":model-package/" not in name_or_arn or name_or_arn.count("/") < 2:
        raise RequestValidationError(f"ModelPackageName {name_or_arn!r}: a versioned model package ARN is required (…:model-package/<group>/<version>)")
    group, version = name_or_arn.rsplit(":model-package/", 1)[1].rsplit("/", 1)
    return f"{group}-{version}"


def describe_model_package(name_or_arn: str, control: ControlPlane | None = None) -> dict:
    control = control or ControlPlane()
    record = control.get("model-packages", _key(name_or_arn))
    if not record:
        raise ResourceNotFound(f"ValidationException: Model Package {name_or_arn} does not exist.")
    return record


def update_model_package(request: dict, control: ControlPlane | None = None) -> dict:
    """``UpdateModelPackage``: a new approval status (with its description) on an existing version."""
    validate_request("sagemaker", "UpdateModelPackage", request)
    control = control or ControlPlane()
    record = describe_model_package(request["ModelPackageArn"], control)
    changes = {k: v for k, v in request.items() if k in ("ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties")}
    record = {**record, **changes, "LastModifiedTime": now()}
    control.put("model-packages", _key(request["ModelPackageArn"]), record)
    return {"ModelPackageArn": record["ModelPackageArn"]}


class ModelRegistryClient:
    """The Model Registry calls of a boto3 ``sagemaker`` client, answered from this machine's records."""

    def __init__(self, control: ControlPlane | None = None):
        self.control = control or ControlPlane()

    def create_model_package(self, **request) -> dict:
        return {"ModelPackageArn": create_model_package(request, self.control)["ModelPackageArn"]}

    def describe_model_package(self, *, ModelPackageName: str) -> dict:
        return describe_model_package(ModelPackageName, self.control)

    def update_model_package(self, **request) -> dict:
        return update_model_package(request, self.control)

    def list_model_packages(self, *, ModelPackageGroupName: str, ModelApprovalStatus: str | None = None, **_) -> dict:
        found = [p for p in packages(ModelPackageGroupName, self.control) if ModelApprovalStatus in (None, p["ModelApprovalStatus"])]
        summary = (
            "ModelPackageGroupName",
            "ModelPackageVersion",
            "ModelPackageArn",
            "ModelPackageDescription",
            "CreationTime",
            "ModelPackageStatus",
            "ModelApprovalStatus",
        )
        return {"ModelPackageSummaryList": [{k: p[k] for k in summary if k in p} for p in reversed(found)]}
