"""Project settings, read from Airflow's configuration section ``[gated_ml]``.

Each can be set in ``airflow.cfg`` or as ``AIRFLOW__GATED_ML__<KEY>`` in the environment:
``target`` (``local`` or ``aws``; default ``local``), ``lake_root`` (the local lake folder;
default ``./lake``), ``spec_dir`` (default ``include/pipelines``), ``gx_dir`` (default
``great_expectations``), ``bucket`` (the lake bucket; default ``gated-ml-lake``), ``region``,
``aws_conn_id`` (``aws_default``), ``kms_key_id`` (SSE-KMS for lake writes and
job outputs on ``aws``), ``deferrable`` (``true``). On ``aws`` the bucket and role ARNs
come from Airflow Variables at run time (see :meth:`gated_ml.targets.aws.AwsTarget.environment`).

Alerts (:mod:`gated_ml.alerts`): ``alert_notifier`` (``file`` or ``smtp``; default ``file``),
``alert_file`` (default ``$AIRFLOW_HOME/logs/gated_ml_alerts.jsonl``), ``smtp_conn_id``
(``smtp_default``: host, port, login and sender live in that Airflow connection, never here)
and ``alert_to`` (comma-separated recipients; required for ``smtp``).
"""

from __future__ import annotations

import os

TARGETS = ("local", "aws")
NOTIFIERS = ("file", "smtp")


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


def alert_notifier() -> str:
    """Which notifier sends alerts (``[gated_ml] alert_notifier``): ``file`` (default) or ``smtp``."""
    value = get("alert_notifier", "file")
    if value not in NOTIFIERS:
        raise ValueError(f"[gated_ml] alert_notifier = {value!r} is not supported; use one of {NOTIFIERS} (airflow.cfg, or AIRFLOW__GATED_ML__ALERT_NOTIFIER)")
    return value


def alert_file() -> str:
    """The JSON-lines file the ``file`` notifier appends to (``[gated_ml] alert_file``; default under ``$AIRFLOW_HOME/logs/``)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return get("alert_file", os.path.join(home, "logs", "gated_ml_alerts.jsonl"))


def smtp_conn_id() -> str:
    """The Airflow connection the ``smtp`` notifier sends through (``[gated_ml] smtp_conn_id``)."""
    return get("smtp_conn_id", "smtp_default")


def alert_to() -> list[str]:
    """The recipients of ``smtp`` alerts (``[gated_ml] alert_to``, comma-separated); required when that notifier is chosen."""
    recipients = [address.strip() for address in get("alert_to", "").split(",") if address.strip()]
    if not recipients:
        raise ValueError(
            "[gated_ml] alert_to is empty but alert_notifier = 'smtp': set the recipients, comma-separated (airflow.cfg, or AIRFLOW__GATED_ML__ALERT_TO)"
        )
    return recipients
