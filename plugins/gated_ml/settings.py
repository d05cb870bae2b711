"""Project settings, read from Airflow's configuration section ``[gated_ml]``.

Each can be set in ``airflow.cfg`` or as ``AIRFLOW__GATED_ML__<KEY>`` in the environment:
``target`` (``local`` or ``aws``; default ``local``), ``lake_root`` (the local lake folder;
default ``./lake``), ``spec_dir`` (default ``include/pipelines``), ``gx_dir`` (default
``great_expectations``), ``bucket`` (the lake bucket; default ``gated-ml-lake``), ``region``,
``aws_conn_id`` (``aws_default``), ``kms_key_id`` (SSE-KMS for lake writes and
job outputs on ``aws``), ``deferrable`` (``true``). On ``aws`` the bucket and role ARNs
come from Airflow Variables at run time (see :meth:`gated_ml.targets.aws.AwsTarget.environment`).
"""

from __future__ import annotations

import os

TARGETS = ("local", "aws")


def get(key: str, default: str) -> str:
    value = os.environ.get(f"AIRFLOW__GATED_ML__{key.upper()}")
    if value:
        return value
    try:
        from airflow.configuration import conf

        return conf.get("gated_ml", key, fallback=default) or default
    except ImportError:  # inside a job process without Airflow
        return default


def target() -> str:
    value = get("target", "local")
    if value not in TARGETS:
        raise ValueError(f"[gated_ml] target = {value!r} is not supported; use one of {TARGETS}")
    return value


def bucket() -> str:
    return get("bucket", "gated-ml-lake")


def region() -> str:
    return get("region", "us-east-1")


def aws_conn_id() -> str:
    return get("aws_conn_id", "aws_default")


def deferrable() -> bool:
    """Long AWS jobs wait in the triggerer (deferrable operators) unless ``[gated_ml] deferrable = false``."""
    return get("deferrable", "true").lower() in ("1", "true", "yes")


def poll_seconds() -> int:
    """How often a waiting AWS operator polls its job (``[gated_ml] poll_seconds``)."""
    return int(get("poll_seconds", "60"))
