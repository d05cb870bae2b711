"""Reading a committed batch: a prefix is read only through the marker its writer wrote last.

The Glue script (``include/glue/etl.py``) commits a curated partition by writing its data
files, then ``_COMMITTED`` (JSON: ``files``, ``rows``, ``attempt``) naming them, then deleting
the files of earlier attempts. A reader takes exactly the files the marker names: a prefix
without a marker (its run still writes, or failed) is refused, and a re-run's new files are
never mixed with the old ones. Same code on S3 and on the local lake (:mod:`gated_ml.storage`).
"""

from __future__ import annotations

import io
import json

from gated_ml import storage
from gated_ml.errors import UncommittedBatch

COMMIT_MARKER = "_COMMITTED"


def is_committed(prefix: str) -> bool:
    return storage.exists(prefix.rstrip("/") + "/" + COMMIT_MARKER)


def manifest(prefix: str) -> dict:
    """The marker of the batch under ``prefix``; :class:`UncommittedBatch` when there is none."""
    marker = prefix.rstrip("/") + "/" + COMMIT_MARKER
    if not storage.exists(marker):
        raise UncommittedBatch(
            f"{prefix} has no {COMMIT_MARKER} marker: its Glue run has not committed it (still running, or failed); "
            "run (or re-run) the ETL of that date before reading it"
        )
    record = json.loads(storage.read_text(marker))
    if not record.get("files"):
        raise UncommittedBatch(f"{marker} names no files: re-run the ETL of that date")
    return record


def committed_files(prefix: str) -> list[str]:
    """The URIs of the files the batch's marker names, in its order."""
    return [prefix.rstrip("/") + "/" + name for name in manifest(prefix)["files"]]


def read_parquet(prefix: str):
    """The committed batch under ``prefix`` as one frame."""
    import pandas as pd

    return pd.concat([pd.read_parquet(io.BytesIO(storage.read_bytes(u))) for u in committed_files(prefix)], ignore_index=True)
