"""Job names derived from pipeline, stage, logical date and try number.

Names must be unique per (logical date, try) so that retries, clears and backfills never
collide, and must fit SageMaker's limits: 63 characters (32 for tuning jobs) matching
``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``. When the readable form is too long the pipeline
part is shortened and a short hash of the full name keeps it unique.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_LEN = 63
MAX_TUNING_LEN = 32


def date_token(logical_date: dt.datetime) -> str:
    """``20261124`` for midnight runs, ``20261124t0600`` when the run has a time of day."""
    if (logical_date.hour, logical_date.minute) == (0, 0):
        return logical_date.strftime("%Y%m%d")
    return logical_date.strftime("%Y%m%dt%H%M")


def job_name(pipeline: str, stage: str, logical_date: dt.datetime, try_number: int, max_len: int = MAX_LEN) -> str:
    return _fit(pipeline, f"{stage}-{date_token(logical_date)}-{try_number}", max_len)


def action_name(pipeline: str, action: str, version: int, run_key: str, try_number: int, max_len: int = MAX_LEN) -> str:
    """The name of what an operator's action run creates (an endpoint config): ``<pipeline>-<action>-v<version>-r<hash>-<try>``.

    ``run_key`` identifies the action run (``<dag_id>/<run_id>``; Airflow keeps run ids unique
    per DAG), so two promotions of one version on one day get two names; ``<hash>`` is its
    first 8 hex digits of SHA-1, after an ``r`` so it never reads as a date: :func:`date_of` of
    an action's name is None, and no "a later run serves" comparison of training runs' dates
    applies to an operator's explicit choice. It ends in the try number, as :func:`for_try` needs.
    """
    digest = hashlib.sha1(run_key.encode()).hexdigest()[:8]
    return _fit(pipeline, f"{action}-v{version}-r{digest}-{try_number}", max_len)


def _fit(pipeline: str, suffix: str, max_len: int) -> str:
    """``<pipeline slug>-<suffix>``, the slug shortened (with a short hash of the full name) when it does not fit."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", pipeline).strip("-")
    name = f"{slug}-{suffix}"
    if len(name) > max_len:
        digest = hashlib.sha1(name.encode()).hexdigest()[:4]
        room = max_len - len(suffix) - len(digest) - 2
        if room < 1:
            raise ValueError(f"cannot fit {suffix!r} into a {max_len}-character name")
        name = f"{slug[:room].rstrip('-')}{digest}-{suffix}"
    if not NAME_PATTERN.match(name) or len(name) > max_len:
        raise ValueError(f"job name {name!r} is not a valid SageMaker name")
    return name


def ds_of(logical_date: dt.datetime) -> str:
    """The lake partition (``ds=``) of a run."""
    return logical_date.strftime("%Y-%m-%d")


def for_try(name: str, try_number: int, max_len: int = MAX_LEN) -> str:
    """``name`` (a :func:`job_name`, ending in ``-<try>``) for another try: the fresh name of a retry.

    Keeps the name valid and within ``max_len`` when the try number grows a digit (the
    readable part is shortened and a short hash keeps it unique, as :func:`job_name` does).
    """
    base, sep, old = name.rpartition("-")
    if not sep or not old.isdigit() or try_number < 1:
        raise ValueError(f"{name!r} does not end in a try number; cannot name try {try_number}")
    renamed = f"{base}-{try_number}"
    if len(renamed) > max_len:
        digest = hashlib.sha1(renamed.encode()).hexdigest()[:4]
        room = max_len - len(str(try_number)) - len(digest) - 2
        renamed = f"{base[:room].rstrip('-')}{digest}-{try_number}"
    if not NAME_PATTERN.match(renamed) or len(renamed) > max_len:
        raise ValueError(f"job name {renamed!r} is not a valid SageMaker name")
    return renamed


_DATE_TOKEN = re.compile(r"-(\d{8}(?:t\d{4})?)-\d+$")


def date_of(name: str) -> str | None:
    """The :func:`date_token` a :func:`job_name` carries (sortable: a later run's is greater), or None for another name."""
    found = _DATE_TOKEN.search(name)
    return found.group(1) if found else None


def try_of(name: str) -> int:
    """The try number a :func:`job_name` ends with."""
    return int(name.rsplit("-", 1)[1])
