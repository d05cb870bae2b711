"""The model registry of the `local` target, in the lake (``registry/``).

Every evaluated model becomes a version, like a SageMaker model package in a model
package group: ``registry/versions/v0001.json`` with its metrics, decision and reasons,
the data it was trained on (curated URI and row count, checksums of the files), the
code (content digest of the entry points, git commit when known) and the job names.
``registry/champion.json`` names the version that serves now; with the versions it
answers "which data and code made the model that serves".

Operations leave their trail here too: each version record's ``history`` lists the approval
actions taken on it (``{action, by, reason, at, approval_before, approval_after}``; the
approval itself lives in the Model Registry), and ``registry/deployments/d000001.json``, one
file per deployment (exclusive create, never rewritten), is the endpoint's history that a
rollback reads: which version served, through which endpoint config, by whose action.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess

from gated_ml import batch_commit, storage
from gated_ml import job_requests as jr
from gated_ml.errors import StageError
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
    """The data a run's model was trained on: its window (``features/ds=…/window.json``) and the curated files' checksums."""
    loc = jr.locations(spec, env)
    window = json.loads(storage.read_text(loc.features(ds) + "window.json"))
    files = [f for batch in window["batches"] for f in batch_commit.committed_files(loc.curated(batch))]
    return {
        "window": window,
        "files": {f.split(f"/{spec.name}/", 1)[-1]: hashlib.sha256(storage.read_bytes(f)).hexdigest() for f in files},
    }


def versions(spec: PipelineSpec, env) -> list[dict]:
    prefix = _prefix(spec, env) + "versions/"
    return [json.loads(storage.read_text(u)) for u in storage.list_uris(prefix) if u.endswith(".json")]


def _version_uri(spec, env, number: int) -> str:
    return _prefix(spec, env) + f"versions/v{number:04d}.json"


def register(spec: PipelineSpec, env, record: dict) -> dict:
    """The version of the model trained as of ``record["ds"]``: one version per date.

    A retried task registers the same model once; a re-run of the date (a new model)
    supersedes its version, keeping the number and listing the models it replaced. A new
    date claims the next number; two runs registering at once get two numbers.
    """
    if record["decision"] not in DECISIONS:
        raise ValueError(f"decision {record['decision']!r} is not one of {DECISIONS}")
    now = dt.datetime.now(dt.UTC).isoformat()
    known = versions(spec, env)
    same_date = next((v for v in known if v["ds"] == record["ds"]), None)
    if same_date is not None:
        replaced = same_date.get("superseded", [])
        if same_date["model_name"] != record["model_name"]:
            replaced = [*replaced, same_date["model_name"]]
        entry = {**record, "pipeline": spec.name, "version": same_date["version"], "registered_at": now, "superseded": replaced}
        entry["history"] = same_date.get("history", [])  # what operators did to the version stays with it
        storage.write(_version_uri(spec, env, entry["version"]), json.dumps(entry, indent=2, default=str))
        return entry
    number = 1 + max((v["version"] for v in known), default=0)
    while True:
        entry = {**record, "pipeline": spec.name, "version": number, "registered_at": now, "superseded": []}
        if storage.create(_version_uri(spec, env, number), json.dumps(entry, indent=2, default=str)):
            return entry
        number += 1  # another run took it


def champion(spec: PipelineSpec, env) -> dict | None:
    """The version serving now, with the endpoint config it serves through."""
    uri = _prefix(spec, env) + "champion.json"
    if not storage.exists(uri):
        return None
    pointer = json.loads(storage.read_text(uri))
    version = next((v for v in versions(spec, env) if v["version"] == pointer["version"]), None)
    return {**version, **pointer} if version else None


def crown(spec: PipelineSpec, env, version: int, endpoint_config: str, *, action: str = "training", by: str | None = None, reason: str | None = None) -> dict:
    """``version`` serves through ``endpoint_config``: the champion pointer, and an entry in the deployment history.

    ``action`` is what deployed it (``training``: a training run's model; ``promote``,
    ``rollback``: an operator's action, with ``by`` and ``reason``). A retried task crowning
    the same config again adds no second entry.
    """
    pointer = {"version": version, "endpoint_config": endpoint_config, "deployed_at": dt.datetime.now(dt.UTC).isoformat()}
    storage.write(_prefix(spec, env) + "champion.json", json.dumps(pointer, indent=2))
    _record_deployment(spec, env, {**pointer, "action": action, "by": by, "reason": reason})
    return pointer


def deployments(spec: PipelineSpec, env) -> list[dict]:
    """The endpoint's deployments, oldest first (``registry/deployments/``)."""
    uris = sorted(u for u in storage.list_uris(_prefix(spec, env) + "deployments/") if u.endswith(".json"))
    return [json.loads(storage.read_text(u)) for u in uris]


def _record_deployment(spec: PipelineSpec, env, entry: dict) -> dict:
    known = deployments(spec, env)
    if known and known[-1]["endpoint_config"] == entry["endpoint_config"]:
        return known[-1]  # the same deployment, crowned again by a retry
    number = 1 + max((d["deployment"] for d in known), default=0)
    while True:
        record = {"deployment": number, **entry}
        if storage.create(_prefix(spec, env) + f"deployments/d{number:06d}.json", json.dumps(record, indent=2)):
            return record
        number += 1  # another deployment took the number


def version(spec: PipelineSpec, env, number: int) -> dict | None:
    """The lake's record of registry version ``number``, or None."""
    uri = _version_uri(spec, env, number)
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def record_action(spec: PipelineSpec, env, number: int, entry: dict) -> dict:
    """Append ``entry`` (``{action, by, reason, at, approval_before, approval_after}``) to version ``number``'s history."""
    record = version(spec, env, number)
    if record is None:
        raise StageError(f"registry version {number} has no record under {_prefix(spec, env)}versions/: nothing to record the {entry['action']} on")
    record["history"] = [*record.get("history", []), entry]
    storage.write(_version_uri(spec, env, number), json.dumps(record, indent=2, default=str))
    return record


def package_summaries(spec: PipelineSpec, client, approval: str | None = None):
    """Every ``ListModelPackages`` summary of the pipeline's group (every page), optionally of one approval status."""
    wanted = {"ModelApprovalStatus": approval} if approval else {}
    token = None
    while True:
        page = client.list_model_packages(ModelPackageGroupName=spec.slug, MaxResults=100, **wanted, **({"NextToken": token} if token else {}))
        yield from page.get("ModelPackageSummaryList", [])
        token = page.get("NextToken")
        if not token:
            return


def approved(spec: PipelineSpec, env, client) -> dict | None:
    """The approved model: the newest ``Approved`` version of the pipeline's model package group, or ``None``.

    ``client`` is a boto3-shaped ``sagemaker`` client (``Target.registry_client()``: SageMaker's
    Model Registry on ``aws``, :class:`~gated_ml.local.model_registry.ModelRegistryClient`
    locally). The answer joins the package (ARN, version, approval) with the lake's version
    record it names (``CustomerMetadataProperties.registry_version``: model name, data, ds).
    """
    summaries = list(package_summaries(spec, client, approval="Approved"))
    if not summaries:
        return None
    newest = max(summaries, key=lambda s: s["ModelPackageVersion"])
    package = client.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
    number = int(package.get("CustomerMetadataProperties", {}).get("registry_version", 0))
    version = next((v for v in versions(spec, env) if v["version"] == number), None)
    if version is None:
        raise StageError(
            f"model package {package['ModelPackageArn']} is Approved but names registry version {number}, which {_prefix(spec, env)}versions/ does not hold: "
            "was the lake cleared while the Model Registry was not? Reject that package, or restore the version record"
        )
    return {
        **version,
        "model_package_arn": package["ModelPackageArn"],
        "model_package_version": package["ModelPackageVersion"],
        "approval": package["ModelApprovalStatus"],
        "approval_description": package.get("ApprovalDescription"),
    }
