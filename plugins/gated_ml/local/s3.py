"""S3 operations the local target needs, on the local lake."""

from __future__ import annotations

import shutil
from pathlib import Path

from gated_ml.lake import atomic_write, local_path


def list_files(prefix_uri: str) -> list[Path]:
    """Files under an S3 prefix (``S3Prefix`` semantics), skipping hidden/temporary files."""
    base = local_path(prefix_uri)
    if base.is_file():
        return [base]
    if not base.exists():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(base).parts))


def download_prefix(prefix_uri: str, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    base = local_path(prefix_uri)
    out = []
    for f in list_files(prefix_uri):
        target = dest / (f.relative_to(base) if base.is_dir() else f.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        out.append(target)
    return out


def put_file(uri: str, source: Path) -> str:
    atomic_write(local_path(uri), source.read_bytes())
    return uri
