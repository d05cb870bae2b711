"""Where a pipeline's data lives, as S3 URIs, and how the `local` target maps them to disk.

Both targets use the same ``s3://bucket/pipeline/...`` URIs; on `local`, ``s3://b/k`` is
``<lake root>/b/k``. Writes on `local` go through :func:`atomic_dir` / :func:`atomic_write`
so a failed task never leaves a half-written partition behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from gated_ml import settings
from gated_ml.spec import PROJECT_ROOT


def lake_root() -> Path:
    """The local lake folder: ``[gated_ml] lake_root``, else ``./lake`` in the project."""
    return Path(settings.get("lake_root", str(PROJECT_ROOT / "lake"))).resolve()


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3:// URI, got {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} has no bucket")
    return bucket, key


def local_path(uri: str, root: Path | None = None) -> Path:
    """The local-lake path of an S3 URI; refuses keys that would escape the lake."""
    bucket, key = split_uri(uri)
    base = (root or lake_root()).resolve()
    path = (base / bucket / key).resolve()
    if base not in path.parents and path != base:
        raise ValueError(f"S3 URI {uri!r} points outside the lake {base}")
    return path


@dataclass(frozen=True)
class Locations:
    """The lake layout of one pipeline (see ARCHITECTURE.md)."""

    bucket: str
    pipeline: str

    def _uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", self.pipeline, *parts])

    def zone(self, name: str) -> str:
        """The prefix of a zone (``landing``, ``curated``, ...) holding its ``ds=`` partitions."""
        return self._uri(name) + "/"

    def landing(self, ds: str) -> str:
        return self._uri("landing", f"ds={ds}") + "/"

    def curated(self, ds: str) -> str:
        return self._uri("curated", f"ds={ds}") + "/"

    def features(self, ds: str, split: str | None = None) -> str:
        return self._uri("features", f"ds={ds}", *([split] if split else [])) + "/"

    def quality(self, ds: str) -> str:
        return self._uri("quality", f"ds={ds}") + "/"

    def quarantine(self, ds: str) -> str:
        return self._uri("quarantine", f"ds={ds}") + "/"

    def baseline(self) -> str:
        return self._uri("baseline") + "/"

    def code(self, digest: str) -> str:
        return self._uri("code", digest) + "/"

    def models(self) -> str:
        return self._uri("models") + "/"

    def transform(self, ds: str) -> str:
        return self._uri("transform", f"ds={ds}") + "/"

    def evaluation(self, ds: str) -> str:
        return self._uri("evaluation", f"ds={ds}") + "/"

    def profile(self, ds: str) -> str:
        """The data section of the run's report: ``profile.json`` and the charts of its batch, its window and the drift."""
        return self._uri("profile", f"ds={ds}") + "/"

    def registry(self) -> str:
        return self._uri("registry") + "/"

    def runs(self, ds: str) -> str:
        """What a training run was asked to do: its trigger-form params (``params.json``)."""
        return self._uri("runs", f"ds={ds}") + "/"

    def scoring(self, ds: str) -> str:
        """The batch of new rows (features only) the scoring DAG scores for ``ds``."""
        return self._uri("scoring", f"ds={ds}") + "/"

    def predictions(self, ds: str) -> str:
        """The scoring DAG's predictions for ``ds``, with the model version beside each file."""
        return self._uri("predictions", f"ds={ds}") + "/"


def files_under(base: Path) -> list[Path]:
    """Files below a local folder, sorted, skipping hidden and Spark/Hadoop bookkeeping files (``.crc``, ``_SUCCESS``)."""
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(base).parts))


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a staging folder; on success it replaces ``final`` in one rename, on error it is removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            staging.rename(final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists; the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def atomic_write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
