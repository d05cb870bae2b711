"""Reading and writing lake objects by S3 URI (on the `local` target: files under the lake root)."""

from __future__ import annotations

import io
import shutil

from gated_ml.lake import atomic_write, local_path


def exists(uri: str) -> bool:
    return local_path(uri).exists()


def read_bytes(uri: str) -> bytes:
    return local_path(uri).read_bytes()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write(uri: str, data: bytes | str) -> str:
    atomic_write(local_path(uri), data)
    return uri


def list_uris(prefix: str) -> list[str]:
    """Objects under a prefix, skipping hidden and Spark/Hadoop bookkeeping files."""
    base = local_path(prefix)
    if not base.exists():
        return []
    files = sorted(p for p in base.rglob("*") if p.is_file() and not any(x.startswith((".", "_")) for x in p.relative_to(base).parts))
    return [prefix.rstrip("/") + "/" + p.relative_to(base).as_posix() for p in files]


def read_parquet(prefix: str):
    import pandas as pd

    files = [u for u in list_uris(prefix) if u.endswith(".parquet")]
    if not files:
        raise FileNotFoundError(f"no Parquet files under {prefix}")
    return pd.concat([pd.read_parquet(io.BytesIO(read_bytes(u))) for u in files], ignore_index=True)


def copy(src: str, dst: str) -> str:
    path = local_path(dst)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local_path(src), path)
    return dst
