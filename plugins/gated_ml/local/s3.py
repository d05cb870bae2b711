"""S3 reads the local target's jobs need (a channel or transform input), on the local lake."""

from __future__ import annotations

import shutil
from pathlib import Path

from gated_ml.lake import files_under, local_path


def list_files(prefix_uri: str) -> list[Path]:
    """Files under an S3 prefix (``S3Prefix`` semantics: the prefix may name one object)."""
    base = local_path(prefix_uri)
    return [base] if base.is_file() else files_under(base)


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
