"""What the `aws` target's failure tests share: moto in-process, a task instance's XCom, moto's job states.

moto 5.2.5 completes every job at creation and has no ``UpdateEndpoint``. The tests set a
job's status on moto's backend objects where they need a failed or running job, and
:func:`stub_update_endpoint` adds the one missing call, in-process only (clearly a stub: it
points the endpoint at the new config, as UpdateEndpoint does once it succeeded).
"""

from __future__ import annotations

import contextlib

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"


@contextlib.contextmanager
def mocked_aws(monkeypatch):
    """moto in this process, with credentials that can only reach it."""
    from moto import mock_aws

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


class TaskInstance:
    """The part of a task instance the operators use: its try number and XCom."""

    def __init__(self, try_number: int = 1, task_id: str = "step"):
        self.try_number, self.task_id, self.xcom = try_number, task_id, {}
        self.stats_tags, self.dag_id, self.run_id, self.map_index = {}, "vertebral_column", "manual__2026-11-01", -1

    def xcom_push(self, key, value):
        self.xcom[key] = value

    def xcom_pull(self, task_ids=None, key="return_value"):
        return self.xcom.get(key)


def context(try_number: int = 1) -> dict:
    return {"ti": TaskInstance(try_number)}


def client(service: str):
    return boto3.client(service, region_name=REGION)


def sagemaker_backend():
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][REGION]


def glue_backend():
    from moto.glue.models import glue_backends

    return glue_backends[ACCOUNT][REGION]


def seed_s3(*uris: str) -> None:
    """Objects at these URIs (the provider checks that a job's inputs exist before it creates the job)."""
    s3 = client("s3")
    for uri in uris:
        bucket, _, key = uri[5:].partition("/")
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key.rstrip("/") + ("/part.csv" if key.endswith("/") else ""), Body=b"1,2\n")


def stub_update_endpoint(monkeypatch) -> list[tuple[str, str]]:
    """STUB (moto 5.2.5 has no UpdateEndpoint): point the endpoint at the new config; returns the calls made."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.models import ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    calls = []

    def update_endpoint(self):
        name, config = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        backend = self.sagemaker_backend
        if name not in backend.endpoints:
            raise ValidationError(message=f"Could not find endpoint {name}")
        backend.describe_endpoint_config(config)  # ValidationError when it does not exist, as SageMaker
        backend.endpoints[name].endpoint_config_name = config
        calls.append((name, config))
        return ActionResult({"EndpointArn": backend.endpoints[name].arn})

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    return calls
