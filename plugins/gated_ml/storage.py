"""Reading and writing lake objects by S3 URI, on either target.

`local`: files under the lake root (writes are atomic renames). `aws`: the S3 bucket
through the Amazon provider's ``S3Hook`` and the ``[gated_ml] aws_conn_id`` connection,
with SSE-KMS when ``[gated_ml] kms_key_id`` is set. Gates, splits and evaluation use
only these functions, so they run unchanged on S3 data.
"""

from __future__ import annotations

import contextlib
import functools
import io
import shutil
import tempfile
from pathlib import Path

from gated_ml import settings
from gated_ml.lake import atomic_dir, atomic_write, create_exclusive, files_under, local_path, split_uri

_HIDDEN = (".", "_")  # as lake.files_under: Spark/Hadoop bookkeeping (_SUCCESS, .crc) and staging files


@functools.cache
def _s3_hook(conn_id: str):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id)


def _s3():
    return _s3_hook(settings.aws_conn_id()) if settings.target() == "aws" else None


def exists(uri: str) -> bool:
    if s3 := _s3():
        bucket, key = split_uri(uri)
        return s3.check_for_key(key, bucket)
    return local_path(uri).exists()


def read_bytes(uri: str) -> bytes:
    if s3 := _s3():
        bucket, key = split_uri(uri)
        return s3.get_key(key, bucket).get()["Body"].read()
    return local_path(uri).read_bytes()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write(uri: str, data: bytes | str) -> str:
    payload = data.encode() if isinstance(data, str) else data
    if s3 := _s3():
        bucket, key = split_uri(uri)
        kms = settings.get("kms_key_id", "")
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}
        s3.get_conn().put_object(Bucket=bucket, Key=key, Body=payload, **extra)
        return uri
    atomic_write(local_path(uri), payload)
    return uri


def create(uri: str, data: bytes | str) -> bool:
    """Write ``uri`` only if it does not exist yet, atomically; False when another writer was first.

    `local`: the full file is linked into place (a link never replaces a file). `aws`: a
    conditional put (``If-None-Match: *``). For numbers and records that concurrent runs claim.
    """
    payload = data.encode() if isinstance(data, str) else data
    if s3 := _s3():
        from botocore.exceptions import ClientError

        bucket, key = split_uri(uri)
        kms = settings.get("kms_key_id", "")
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}
        try:
            s3.get_conn().put_object(Bucket=bucket, Key=key, Body=payload, IfNoneMatch="*", **extra)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True
    return create_exclusive(local_path(uri), payload)


def list_uris(prefix: str) -> list[str]:
    """Objects under a prefix, skipping hidden and Spark/Hadoop bookkeeping files."""
    prefix = prefix.rstrip("/") + "/"
    if s3 := _s3():
        bucket, key = split_uri(prefix)
        keys = s3.list_keys(bucket_name=bucket, prefix=key) or []
        rels = [k[len(key) :] for k in keys]
        return sorted(prefix + r for r in rels if r and not any(part.startswith(_HIDDEN) for part in r.split("/")))
    base = local_path(prefix)
    return [prefix + p.relative_to(base).as_posix() for p in files_under(base)]


def read_parquet(prefix: str):
    import pandas as pd

    files = [u for u in list_uris(prefix) if u.endswith(".parquet")]
    if not files:
        raise FileNotFoundError(f"no Parquet files under {prefix}")
    return pd.concat([pd.read_parquet(io.BytesIO(read_bytes(u))) for u in files], ignore_index=True)


def copy(src: str, dst: str) -> str:
    if _s3():
        return write(dst, read_bytes(src))
    path = local_path(dst)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local_path(src), path)
    return dst


@contextlib.contextmanager
def staged(prefix: str):
    """Yield a local folder whose files become the objects under ``prefix`` on success.

    `local`: the folder replaces the partition in one rename. `aws`: the files are
    uploaded (S3 has no rename; readers see the new objects once all are written).
    """
    if not _s3():
        with atomic_dir(local_path(prefix)) as folder:
            yield folder
        return
    with tempfile.TemporaryDirectory(prefix="gated-ml-stage-") as tmp:
        folder = Path(tmp)
        yield folder
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                write(prefix.rstrip("/") + "/" + f.relative_to(folder).as_posix(), f.read_bytes())
