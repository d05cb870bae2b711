"""The Amazon provider's operators with what this project needs on top (used by the `aws` target).

SageMaker operators that re-attach to a job instead of starting it twice:

The provider's ``action_if_job_exists="timestamp"`` starts a *second* job under a new
name when the first still runs. Here the request task of a retry names the job of an
earlier attempt when that job is still running or completed (see
:meth:`gated_ml.targets.aws.AwsTarget.attempt_request`), and these operators, finding the job, wait for it
(re-attach) or reuse it (completed) instead of creating it again. A job that failed or
was stopped is not reused: the retry starts its own, under its own name.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.glue_catalog import GlueCatalogCreatePartitionOperator, GlueCatalogCreateTableOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
    SageMakerTuningOperator,
)
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import ClientError

from gated_ml.targets.arrival import NamesTheMissingBatch


class _Reattach:
    status_key: str
    describe: str

    def job_name(self) -> str:
        raise NotImplementedError

    def execute(self, context):
        name = self.job_name()
        try:
            job = getattr(self.hook, self.describe)(name)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
            return super().execute(context)
        status = job[self.status_key]
        if status in ("InProgress", "Stopping"):
            self.log.info("%s is %s from an earlier attempt: re-attaching instead of starting it again", name, status)
            job = self.hook.check_status(name, self.status_key, getattr(self.hook, self.describe), self.check_interval, self.max_ingestion_time)
            status = job[self.status_key]
        if status != "Completed":
            raise AirflowException(f"{name} ended {status}: {job.get('FailureReason', 'no reason given')}")
        self.log.info("%s completed in an earlier attempt: reusing it", name)
        return None


class ReattachingTrainingOperator(_Reattach, SageMakerTrainingOperator):
    status_key, describe = "TrainingJobStatus", "describe_training_job"

    def job_name(self) -> str:
        return self.config["TrainingJobName"]


class ReattachingTuningOperator(_Reattach, SageMakerTuningOperator):
    status_key, describe = "HyperParameterTuningJobStatus", "describe_tuning_job"

    def job_name(self) -> str:
        return self.config["HyperParameterTuningJobName"]


class ReattachingTransformOperator(_Reattach, SageMakerTransformOperator):
    status_key, describe = "TransformJobStatus", "describe_transform_job"

    def job_name(self) -> str:
        return self.config.get("Transform", self.config)["TransformJobName"]


class CatalogTableOperator(GlueCatalogCreateTableOperator):
    """The provider's operator with ``table_input`` templated: its location is known at run time only."""

    template_fields = (*GlueCatalogCreateTableOperator.template_fields, "table_input")


class CatalogPartitionOperator(GlueCatalogCreatePartitionOperator):
    """The provider's operator with ``partition_input`` templated (the partition of the run's ``ds``)."""

    template_fields = (*GlueCatalogCreatePartitionOperator.template_fields, "partition_input")


class RegisterModelVersionOperator(SageMakerRegisterModelVersionOperator):
    """The provider's operator with ``extras`` templated: the whole ``CreateModelPackage`` request is built at run time.

    ``extras`` overrides the operator's own request fields, so the package carries the
    request's container environment, approval status and metadata, not the operator's defaults.
    """

    template_fields = (*SageMakerRegisterModelVersionOperator.template_fields, "extras")


class S3BatchSensor(NamesTheMissingBatch, S3KeySensor):
    """The provider's ``S3KeySensor`` waiting for one batch key, failing with the key named."""

    template_fields = (*S3KeySensor.template_fields, "batch_uri")

    def __init__(self, *, batch_uri: str, **kwargs):
        super().__init__(bucket_key=batch_uri, **kwargs)
        self.batch_uri = batch_uri
