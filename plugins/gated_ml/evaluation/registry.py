"""The model registry of the `local` target, in the lake (``registry/``).

Every evaluated model becomes a version, like a SageMaker model package in a model
package group: ``registry/versions/v0001.json`` with its metrics, decision and reasons,
the data it was trained on (curated URI and row count, checksums of the files), the
code (content digest of the entry points, git commit when known) and the job names.
``registry/champion.json`` names the version that serves now; with the versions it
answers "which data and code made the model that serves".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.spec import PROJECT_ROOT, PipelineSpec

DECISIONS = ("Approved", "Rejected", "PendingManualApproval")


def _prefix(spec, env) -> str:
    return jr.locations(spec, env).registry()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def data_snapshot(spec, env, ds: str) -> dict:
    uri = jr.locations(spec, env).curated(ds)
    files = storage.list_uris(uri)
    return {
        "curated_uri": uri,
        "files": {f.rsplit("/", 1)[-1]: hashlib.sha256(storage.read_bytes(f)).hexdigest() for f in files},
    }


def versions(spec: PipelineSpec, env) -> list[dict]:
    prefix = _prefix(spec, env) + "versions/"
    return [json.loads(storage.read_text(u)) for u in storage.list_uris(prefix) if u.endswith(".json")]


def register(spec: PipelineSpec, env, record: dict) -> dict:
    """Add a version (or update the one of the same model: a retried task registers once)."""
    if record["decision"] not in DECISIONS:
        raise ValueError(f"decision {record['decision']!r} is not one of {DECISIONS}")
    existing = [v for v in versions(spec, env) if v["model_name"] == record["model_name"]]
    number = existing[0]["version"] if existing else 1 + max((v["version"] for v in versions(spec, env)), default=0)
    entry = {**record, "pipeline": spec.name, "version": number, "registered_at": dt.datetime.now(dt.UTC).isoformat()}
    storage.write(_prefix(spec, env) + f"versions/v{number:04d}.json", json.dumps(entry, indent=2, default=str))
    return entry


def champion(spec: PipelineSpec, env) -> dict | None:
    """The version serving now, with the endpoint config it serves through."""
    uri = _prefix(spec, env) + "champion.json"
    if not storage.exists(uri):
        return None
    pointer = json.loads(storage.read_text(uri))
    version = next((v for v in versions(spec, env) if v["version"] == pointer["version"]), None)
    return {**version, **pointer} if version else None


def crown(spec: PipelineSpec, env, version: int, endpoint_config: str) -> dict:
    pointer = {"version": version, "endpoint_config": endpoint_config, "deployed_at": dt.datetime.now(dt.UTC).isoformat()}
    storage.write(_prefix(spec, env) + "champion.json", json.dumps(pointer, indent=2))
    return pointer
