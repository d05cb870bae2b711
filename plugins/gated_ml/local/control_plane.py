"""What the local target knows about its jobs, models and endpoints: the Describe* answers.

Each resource is a JSON file ``<lake root>/_control/<kind>/<name>.json``, written
atomically, shaped like the matching ``Describe*`` response (timestamps as ISO strings).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from gated_ml.lake import atomic_write, lake_root


class ResourceInUse(RuntimeError):
    """Like the API's ``ResourceInUse``: a resource of that name already exists."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class ControlPlane:
    def __init__(self, root: Path | None = None):
        self.root = (root or lake_root()) / "_control"

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.json"

    def get(self, kind: str, name: str) -> dict | None:
        p = self.path(kind, name)
        return json.loads(p.read_text()) if p.exists() else None

    def put(self, kind: str, name: str, record: dict) -> dict:
        atomic_write(self.path(kind, name), json.dumps(record, indent=2, default=str))
        return record

    def work_dir(self, kind: str, name: str) -> Path:
        """Scratch space of one job (the container's ``/opt/ml``)."""
        d = self.root / "work" / kind / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:local:000000000000:{kind.rstrip('s')}/{name.lower()}"
