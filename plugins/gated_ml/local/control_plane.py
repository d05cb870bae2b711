"""What the local target knows about its jobs, models and endpoints: the Describe* answers.

Each resource is a JSON file ``<lake root>/_control/<kind>/<name>.json``, written
atomically, shaped like the matching ``Describe*`` response (timestamps as ISO strings).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from gated_ml.errors import ResourceInUse
from gated_ml.lake import atomic_write, lake_root

log = logging.getLogger(__name__)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


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

    def reuse(self, kind: str, name: str, request: dict, status_key: str | None = None) -> dict | None:
        """The existing record of ``name`` if it completed from the very same request, else ``None``.

        A name that exists with another request, or that did not complete, raises
        :class:`ResourceInUse`, as the API refuses a duplicate name: a job is never run twice.
        """
        existing = self.get(kind, name)
        if existing is None:
            return None
        status = existing.get(status_key) if status_key else "Completed"
        same = existing.get("Request") == request
        if status == "Completed" and same:
            log.info("%s %s already completed from the same request: reusing it", kind, name)
            return existing
        raise ResourceInUse(
            f"{kind} {name} already exists"
            + (f" with status {status}" if status_key else "")
            + ("" if same else " and a different request")
            + "; clear the task to run it again under a new try number"
        )

    def work_dir(self, kind: str, name: str) -> Path:
        """Scratch space of one job (the container's ``/opt/ml``)."""
        d = self.root / "work" / kind / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def arn(self, kind: str, name: str) -> str:
        """An ARN of AWS's form (the configured region, account 000000000000), so requests naming it pass the service model."""
        from gated_ml.settings import region

        return f"arn:aws:sagemaker:{region()}:000000000000:{kind.rstrip('s')}/{name.lower()}"
