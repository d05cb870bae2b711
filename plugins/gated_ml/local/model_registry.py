"""SageMaker's Model Registry on this machine: model package groups and their numbered versions.

``CreateModelPackage`` requests become records in the control plane
(``_control/model-package-groups/``, ``_control/model-packages/<group>-<version>``), answered
like ``DescribeModelPackage``. A version number is claimed with an exclusive create, so two
runs registering at once get two numbers; the same request sent again (a retried task)
returns the version it already made.
"""

from __future__ import annotations

import json
import os

from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request


def packages(group: str, control: ControlPlane | None = None) -> list[dict]:
    """The versions of a model package group, oldest first."""
    control = control or ControlPlane()
    folder = control.root / "model-packages"
    texts = [p.read_text() for p in folder.glob(f"{group}-*.json")] if folder.is_dir() else []
    found = [json.loads(t) for t in texts if t]  # an empty file is a number claimed by a registration still writing
    return sorted((p for p in found if p.get("ModelPackageGroupName") == group), key=lambda p: p["ModelPackageVersion"])


def create_model_package(request: dict, control: ControlPlane | None = None) -> dict:
    validate_request("sagemaker", "CreateModelPackage", request)
    control = control or ControlPlane()
    group = request["ModelPackageGroupName"]
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
    for existing in packages(group, control):
        if existing["Request"] == request:
            return existing
    version = 1 + max((p["ModelPackageVersion"] for p in packages(group, control)), default=0)
    while True:  # claim the number: a concurrent registration that took it first moves us to the next
        path = control.path("model-packages", f"{group}-{version}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            version += 1
    record = {
        **{k: v for k, v in request.items() if k != "Tags"},
        "ModelPackageName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": control.arn("model-packages", f"{group}/{version}"),
        "ModelPackageStatus": "Completed",
        "CreationTime": now(),
        "Request": request,
    }
    return control.put("model-packages", f"{group}-{version}", record)
