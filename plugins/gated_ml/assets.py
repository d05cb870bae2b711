"""The Airflow assets each pipeline publishes, so other DAGs can be scheduled on them.

``<pipeline>.curated``: a batch passed the curated gate and its partition is in the catalog
(the training DAG's ``etl`` group emits it). ``<pipeline>.approved_model``: the model the
registry approves changed (a training run's model was approved, or an operator approved,
promoted or rolled back a version); the event's ``extra`` names the version. The scoring
DAG (``<pipeline>_scoring``) is the first consumer. Built at parse time from the spec and
``[gated_ml] bucket`` only: no AWS call.

The URIs use the custom scheme ``x-gated-ml://<bucket>/<pipeline>/...`` (the lake location they
stand for), not ``s3://``: Airflow normalises a URI of any other scheme through the providers'
handlers, and the Amazon provider's S3 handler imports boto3 while a DAG file is parsed.
"""

from __future__ import annotations

from airflow.sdk import Asset

from gated_ml import settings
from gated_ml.spec import PipelineSpec

GROUP = "gated-ml"
SCHEME = "x-gated-ml"  # "x-": a custom scheme Airflow leaves as it is (no provider import at parse time)


def curated(spec: PipelineSpec) -> Asset:
    return Asset(name=f"{spec.name}.curated", uri=f"{SCHEME}://{settings.bucket()}/{spec.name}/curated/", group=GROUP)


def approved_model(spec: PipelineSpec) -> Asset:
    return Asset(name=f"{spec.name}.approved_model", uri=f"{SCHEME}://{settings.bucket()}/{spec.name}/registry/approved/", group=GROUP)
