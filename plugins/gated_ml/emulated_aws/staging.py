"""Moving objects between moto's in-memory S3 and the staging lake the local runners read and write.

The local runners work on ``s3://`` URIs mapped under the lake root (:func:`gated_ml.lake.local_path`);
in the emulator process that root is a staging folder. Before a job runs, what it reads is
copied from moto's S3 into it (a prefix is mirrored: files S3 no longer has are removed);
after it ran, what it wrote is copied back. moto's S3 backend is read directly, in-process,
so staging makes no API calls (nothing a recording of the DAG's calls would show).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from gated_ml.emulated_aws import moto_backends
from gated_ml.errors import ResourceNotFound
from gated_ml.lake import atomic_write, local_path, split_uri

log = logging.getLogger(__name__)


def _keys(bucket: str, prefix: str) -> list[str]:
    store = moto_backends.s3().get_bucket(bucket)  # raises moto's NoSuchBucket for an unknown bucket
    return sorted(k for k in store.keys.keys() if k.startswith(prefix))


def _object(bucket: str, key: str) -> bytes:
    found = moto_backends.s3().get_object(bucket, key)
    if found is None:
        raise ResourceNotFound(f"s3://{bucket}/{key} does not exist in the emulator's S3")
    return found.value


def stage_in(uri: str) -> list[str]:
    """Copy the object ``uri`` names, or every object under it (``S3Prefix`` semantics), into the staging lake.

    A prefix is mirrored: staged files S3 no longer holds are removed. Returns the keys copied;
    raises :class:`ResourceNotFound` when nothing is there.
    """
    bucket, prefix = split_uri(uri)
    keys = _keys(bucket, prefix)
    if not keys:
        raise ResourceNotFound(f"nothing in the emulator's S3 at {uri}: the job's input must be uploaded first")
    exact = prefix in keys and not prefix.endswith("/")
    keys = [prefix] if exact else keys
    for key in keys:
        atomic_write(local_path(f"s3://{bucket}/{key}"), _object(bucket, key))
    if not exact:
        _remove_unlisted(local_path(uri) if prefix.endswith("/") else local_path(uri).parent, bucket, set(keys), prefix)
    return keys


def _remove_unlisted(folder: Path, bucket: str, keys: set[str], prefix: str) -> None:
    if not folder.is_dir():
        return
    root = local_path(f"s3://{bucket}/")
    for f in [p for p in folder.rglob("*") if p.is_file()]:
        key = f.relative_to(root).as_posix()
        if key.startswith(prefix) and key not in keys:
            f.unlink()


def stage_in_all(uris) -> None:
    for uri in uris:
        stage_in(uri)


def upload(uri: str) -> None:
    """Copy one staged file back to moto's S3 under the same URI."""
    bucket, key = split_uri(uri)
    moto_backends.s3().put_object(bucket, key, local_path(uri).read_bytes())


def snapshot(prefix_uri: str) -> dict[str, tuple[int, int]]:
    """``{uri: (size, mtime_ns)}`` of the staged files under a prefix, to see later what a job wrote."""
    base = local_path(prefix_uri)
    if not base.is_dir():
        return {}
    return {_uri(prefix_uri, base, f): (f.stat().st_size, f.stat().st_mtime_ns) for f in base.rglob("*") if _published(f.relative_to(base))}


def _published(rel: Path) -> bool:
    """Whether a file a job left in the staging lake is an object on S3 (not a local-filesystem checksum or a staging folder)."""
    return not any(part.startswith(".") for part in rel.parts) and rel.suffix != ".crc"


def _uri(prefix_uri: str, base: Path, f: Path) -> str:
    return prefix_uri.rstrip("/") + "/" + f.relative_to(base).as_posix()


def publish_changes(prefix_uri: str, before: dict[str, tuple[int, int]]) -> list[str]:
    """Upload what a job wrote under ``prefix_uri`` since ``before`` and delete what it removed.

    Data files go first, bookkeeping files (``_``-prefixed: ``_SUCCESS``, commit markers) last,
    so a reader that waits for the marker finds the data complete.
    """
    after = {u: s for u, s in snapshot(prefix_uri).items() if local_path(u).is_file()}
    changed = sorted((u for u, s in after.items() if before.get(u) != s), key=lambda u: (u.rsplit("/", 1)[-1].startswith("_"), u))
    for uri in changed:
        upload(uri)
    s3 = moto_backends.s3()
    for uri in sorted(set(before) - set(after)):
        bucket, key = split_uri(uri)
        s3.delete_object(bucket, key)
    log.info("published %d objects under %s (%d removed)", len(changed), prefix_uri, len(set(before) - set(after)))
    return changed


def clear(root: Path) -> None:
    """Empty the staging lake (the emulator's start)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
