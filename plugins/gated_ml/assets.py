"""The Airflow assets each pipeline publishes, so other DAGs can be scheduled on them.

``<pipeline>.curated``: a batch passed the curated gate and its partition is in the catalog
(the training DAG's ``etl`` group emits it). ``<pipeline>.approved_model``: the model the
registry approves changed (a training run's model was approved, or an operator approved,
promoted or rolled back a version); the event's ``extra`` names the version. The scoring
DAG (``<pipeline>_scoring``) is the first consumer.

The assets are named, not addressed by an ``s3://`` URI: Airflow normalises a URI with its
providers' handlers, which imports boto3, and parsing a DAG must import no AWS SDK. Where
the data lives is in the asset's ``extra`` (``location``). Another DAG schedules on one with
``Asset.ref(name="<pipeline>.approved_model")`` or the asset itself. Built at parse time from
the spec and ``[gated_ml] bucket`` only: no AWS call.
"""

from __future__ import annotations

from airflow.sdk import Asset

from gated_ml import settings
from gated_ml.spec import PipelineSpec

GROUP = "gated-ml"


def curated(spec: PipelineSpec) -> Asset:
    return Asset(name=f"{spec.name}.curated", group=GROUP, extra={"location": f"s3://{settings.bucket()}/{spec.name}/curated/"})


def approved_model(spec: PipelineSpec) -> Asset:
    return Asset(name=f"{spec.name}.approved_model", group=GROUP, extra={"location": f"s3://{settings.bucket()}/{spec.name}/registry/"})
