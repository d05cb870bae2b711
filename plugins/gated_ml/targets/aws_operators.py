"""The Amazon provider's operators with what this project needs on top (used by the `aws` target).

**Names across retries.** An operator task retries alone: its request (and the names in it)
comes from the request task's XCom, built once, with names ending in ``-1``. Each operator
here walks the names of the request's resource for tries 1, 2, … (:func:`gated_ml.naming.for_try`)
and takes the first that is free, running or done:

- a job (training, tuning, transform) that does not exist is created under that name; one
  that is ``InProgress`` is re-attached to (waited for, deferrably when the operator is); one
  that ``Completed`` is reused; one that ``Failed`` or was ``Stopped`` is passed over: the
  retry starts a fresh job under the next name;
- a model or an endpoint config that exists is passed over (CreateModel and
  CreateEndpointConfig refuse an existing name): the retry creates it under the next name.

Each pushes the name it used as the XCom ``resource_name``; the result task reads the
resource under that name (:meth:`gated_ml.targets.aws.AwsTarget.task`).

**Waits.** Every wait (the provider's ``max_attempts``/``max_ingestion_time``, the trigger's
``waiter_max_attempts``, Glue's ``waiter_max_attempts``) is derived from the request's own
time limit when the task runs (:mod:`gated_ml.targets.aws_waits`).

**Deployment.** :class:`DeployEndpointOperator` updates (or creates) the endpoint, smoke-tests
it through a stock ``sagemaker-runtime`` client, and rolls it back to the endpoint config it
served before when the test fails: without retry when the answers disagree, for a retry
when the endpoint could not answer.

**Glue refusals.** :class:`GlueEtlOperator` reads a failed run's ``ErrorMessage``: the
script's refusal of its data fails the task without retry; anything else is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.glue_catalog import GlueCatalogCreatePartitionOperator, GlueCatalogCreateTableOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
    SageMakerTuningOperator,
)
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from botocore.exceptions import ClientError

from gated_ml import naming
from gated_ml.errors import Fault, SmokeTestFailed, SmokeTestUnanswered, airflow_outcome, glue_run_failure
from gated_ml.targets import aws_waits
from gated_ml.targets.arrival import NamesTheMissingBatch

NAME_XCOM = "resource_name"  # the name an operator actually used, for its result task
PREVIOUS_XCOM = "previous_endpoint_config"  # what the endpoint served before a deployment (to roll back to), across a deferral
MAX_TRIES = 25  # names tried before giving up: far more than any spec's retries
RUNNING, DONE, ENDED = ("InProgress", "Stopping"), ("Completed",), ("Failed", "Stopped")


def _not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException")


def get_in(config: dict, path: tuple[str, ...]):
    for key in path[:-1]:
        config = config[key]
    return config[path[-1]]


def set_in(config: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


class _FreshNames:
    """Walks the names of the request's resource for tries 1, 2, … (see the module docstring)."""

    name_path: tuple[str, ...]
    max_name_len = naming.MAX_LEN

    def candidate_names(self) -> Iterator[str]:
        first = get_in(self.config, self.name_path)
        for try_number in range(1, MAX_TRIES + 1):
            yield naming.for_try(first, try_number, self.max_name_len)
        raise Fault(f"{first}: {MAX_TRIES} names tried, every one taken by an earlier failed try; look at why they failed")

    def use_name(self, name: str, context) -> None:
        set_in(self.config, self.name_path, name)
        context["ti"].xcom_push(key=NAME_XCOM, value=name)

    def describe_or_none(self, describe: Callable[[str], dict], name: str) -> dict | None:
        try:
            return describe(name)
        except ClientError as e:
            if _not_found(e):
                return None
            raise


class _ReattachingJob(_FreshNames):
    """A SageMaker job operator: create under a free name, re-attach to a running job, reuse a completed one."""

    status_key: str
    describe: str
    trigger_job_type: str

    def wait_for(self, context) -> aws_waits.Wait:
        raise NotImplementedError

    def execute(self, context):
        self.preprocess_config()
        wait = self.wait_for(context)
        self.max_attempts, self.max_ingestion_time = wait.max_attempts, wait.seconds
        self.log.info("waiting up to %d s for the job (%d polls every %d s), from its own time limit", wait.seconds, wait.max_attempts, wait.delay)
        for name in self.candidate_names():
            job = self.describe_or_none(getattr(self.hook, self.describe), name)
            status = None if job is None else job[self.status_key]
            if status is None:
                self.use_name(name, context)
                return super().execute(context)
            if status in RUNNING:
                self.use_name(name, context)
                return self.reattach(name, wait)
            if status in DONE:
                self.use_name(name, context)
                self.log.info("%s completed in an earlier try: reusing it", name)
                return None
            self.log.info("%s ended %s in an earlier try (%s): this try starts a fresh job", name, status, job.get("FailureReason", "no reason given"))
        return None  # not reached: candidate_names raises

    def reattach(self, name: str, wait: aws_waits.Wait):
        self.log.info("%s is running from an earlier try: re-attaching instead of starting it again", name)
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=name,
                    job_type=self.trigger_job_type,
                    waiter_delay=wait.delay,
                    waiter_max_attempts=wait.max_attempts,
                    aws_conn_id=self.aws_conn_id,
                ),
                method_name="execute_complete",
            )
        job = self.hook.check_status(name, self.status_key, getattr(self.hook, self.describe), wait.delay, wait.seconds)
        if job[self.status_key] != "Completed":
            raise AirflowException(f"{name} ended {job[self.status_key]}: {job.get('FailureReason', 'no reason given')}")
        return None


class ReattachingTrainingOperator(_ReattachingJob, SageMakerTrainingOperator):
    status_key, describe, trigger_job_type, name_path = "TrainingJobStatus", "describe_training_job", "training", ("TrainingJobName",)

    def wait_for(self, context) -> aws_waits.Wait:
        return aws_waits.training(self.config, self.check_interval)


class ReattachingTuningOperator(_ReattachingJob, SageMakerTuningOperator):
    status_key, describe, trigger_job_type = "HyperParameterTuningJobStatus", "describe_tuning_job", "tuning"
    name_path, max_name_len = ("HyperParameterTuningJobName",), naming.MAX_TUNING_LEN

    def wait_for(self, context) -> aws_waits.Wait:
        return aws_waits.tuning(self.config, self.check_interval)

    def defer(self, *, trigger, **kwargs):
        """The provider's tuning operator gives its trigger no attempt limit (480 polls): give it the job's."""
        if isinstance(trigger, SageMakerTrigger):
            trigger.attempts = self.max_attempts
        super().defer(trigger=trigger, **kwargs)


class ReattachingTransformOperator(_ReattachingJob, SageMakerTransformOperator):
    status_key, describe, trigger_job_type, name_path = "TransformJobStatus", "describe_transform_job", "transform", ("Transform", "TransformJobName")

    def wait_for(self, context) -> aws_waits.Wait:
        request = self.config["Transform"]
        return aws_waits.transform(request, self._input_bytes(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]), self.check_interval)

    def _input_bytes(self, uri: str) -> int:
        bucket, _, prefix = uri[5:].partition("/")
        pages = self.hook.s3_hook.get_conn().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sum(o["Size"] for page in pages for o in page.get("Contents", []))


class FreshNameModelOperator(_FreshNames, SageMakerModelOperator):
    """``CreateModel`` under the first name no earlier try took."""

    name_path = ("ModelName",)

    def execute(self, context):
        for name in self.candidate_names():
            if self.describe_or_none(self.hook.describe_model, name) is None:
                self.use_name(name, context)
                return super().execute(context)
            self.log.info("model %s exists from an earlier try: this try creates it under the next name", name)
        return None


class DeployEndpointOperator(_FreshNames, SageMakerEndpointOperator):
    """The endpoint config (under a free name), the endpoint updated (or created) to it, then the smoke test.

    ``smoke_test(client, inputs)`` (``Step.check``) runs through a stock ``sagemaker-runtime``
    client once the endpoint is in service with the new config. When it fails, the endpoint
    is updated back to the config it served before and waited for (deleted when it served
    nothing before, as the `local` target never deploys a model that failed); the result
    task, which crowns the model, never runs. Answers that differ from batch transform's fail
    the task without retry (:class:`SmokeTestFailed`); an endpoint that could not answer
    (``ModelError``, a 5xx: :class:`SmokeTestUnanswered`) fails it for a retry, which
    creates the config under the next free name and deploys again.

    Why not SageMaker's deployment guardrails (blue/green with ``AutoRollbackConfiguration``):
    their rollback fires on CloudWatch alarms, which need metrics, alarms and their IAM in
    every account, and no alarm expresses "the answers equal batch transform's" for chosen
    rows; the check here is that comparison, run before the registry changes. Endpoint
    updates are blue/green either way: the old fleet serves until the new one is in service.
    """

    template_fields = (*SageMakerEndpointOperator.template_fields, "smoke_inputs")
    name_path = ("EndpointConfig", "EndpointConfigName")
    IN_FLIGHT = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")

    def __init__(self, *, smoke_test: Callable, smoke_inputs: dict, **kwargs):
        super().__init__(**kwargs)
        self.smoke_test = smoke_test
        self.smoke_inputs = smoke_inputs

    @property
    def endpoint_name(self) -> str:
        return self.config["Endpoint"]["EndpointName"]

    def execute(self, context):
        self.preprocess_config()
        config = self.config["EndpointConfig"]
        name = next(n for n in self.candidate_names() if self.describe_or_none(self.hook.describe_endpoint_config, n) is None)
        wait = aws_waits.endpoint(config, self.check_interval)
        previous = self.serving_config(wait)
        self.skip_if_newer_serves(previous, name)
        self.use_name(name, context)
        self.config["Endpoint"]["EndpointConfigName"] = name
        self.hook.create_endpoint_config(config)
        context["ti"].xcom_push(key=PREVIOUS_XCOM, value=previous)  # defer kwargs are not kept by every runner (dag.test drops them)
        if previous is None:
            self.log.info("creating endpoint %s with %s", self.endpoint_name, name)
            self.hook.conn.create_endpoint(**self.config["Endpoint"])
        else:
            self.log.info("updating endpoint %s from %s to %s", self.endpoint_name, previous, name)
            self.hook.conn.update_endpoint(EndpointName=self.endpoint_name, EndpointConfigName=name)
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=self.endpoint_name,
                    job_type="endpoint",
                    waiter_delay=wait.delay,
                    waiter_max_attempts=wait.max_attempts,
                    aws_conn_id=self.aws_conn_id,
                ),
                method_name="execute_complete",
            )
        self.wait_in_service(wait)
        return self.check_new_config(name, previous)

    def execute_complete(self, context, event=None, **kwargs):
        ti = context["ti"]
        name, previous = (ti.xcom_pull(task_ids=ti.task_id, key=key) for key in (NAME_XCOM, PREVIOUS_XCOM))
        if not event or event.get("status") != "success":
            raise AirflowException(f"endpoint {self.endpoint_name} did not come into service with {name}: {event}")
        return self.check_new_config(name, previous)

    def skip_if_newer_serves(self, previous: str | None, name: str) -> None:
        """A model of a later date took the endpoint since this run's request was built (a backfill's older date): skip.

        The request task checked the champion, but runs of several dates interleave their
        request, deploy and result tasks (the endpoint pool serialises each task, not the
        three); the endpoint's own config, read here in the serialised deploy, is the truth.
        """
        served, ours = naming.date_of(previous or ""), naming.date_of(name)
        if served is not None and ours is not None and served > ours:
            raise AirflowSkipException(
                f"endpoint {self.endpoint_name} serves {previous}, of a later run than this one ({name}): a model trained on older data never replaces it"
            )

    def serving_config(self, wait: aws_waits.Wait) -> str | None:
        """The config the endpoint serves now (after any update in flight), or None when there is no endpoint to update."""
        endpoint = self.describe_or_none(self.hook.describe_endpoint, self.endpoint_name)
        if endpoint is not None and endpoint["EndpointStatus"] in self.IN_FLIGHT:
            self.log.info("endpoint %s is %s: waiting for it first", self.endpoint_name, endpoint["EndpointStatus"])
            self.wait_in_service(wait)
            endpoint = self.hook.describe_endpoint(self.endpoint_name)
        if endpoint is not None and endpoint["EndpointStatus"] == "Failed":  # cannot be updated: SageMaker requires deleting it
            self.log.warning("endpoint %s is Failed (%s): deleting it to create it again", self.endpoint_name, endpoint.get("FailureReason"))
            self.hook.conn.delete_endpoint(EndpointName=self.endpoint_name)
            self.hook.conn.get_waiter("endpoint_deleted").wait(
                EndpointName=self.endpoint_name, WaiterConfig={"Delay": wait.delay, "MaxAttempts": wait.max_attempts}
            )
            return None
        return None if endpoint is None else endpoint["EndpointConfigName"]

    def wait_in_service(self, wait: aws_waits.Wait) -> None:
        self.hook.conn.get_waiter("endpoint_in_service").wait(
            EndpointName=self.endpoint_name, WaiterConfig={"Delay": wait.delay, "MaxAttempts": wait.max_attempts}
        )

    def check_new_config(self, name: str, previous: str | None):
        endpoint = self.hook.describe_endpoint(self.endpoint_name)
        if endpoint["EndpointConfigName"] != name:  # a failed update leaves the old config serving, InService
            raise Fault(
                f"endpoint {self.endpoint_name} serves {endpoint['EndpointConfigName']}, not {name}: the update failed ({endpoint.get('FailureReason')})"
            )
        client = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker-runtime").conn
        try:
            rows = self.smoke_test(client, self.smoke_inputs)
        except SmokeTestFailed as e:
            _fail(SmokeTestFailed(f"{e}; {self.roll_back(previous)}"))
        except SmokeTestUnanswered as e:
            raise SmokeTestUnanswered(f"{e}; {self.roll_back(previous)}; the retry deploys again under a fresh endpoint config name") from e
        except Exception:
            self.log.exception("the smoke test of %s could not run", name)
            self.roll_back(previous)
            raise
        self.log.info("endpoint %s serves %s: smoke test of %d rows agrees with batch transform", self.endpoint_name, name, rows)
        return None

    def roll_back(self, previous: str | None) -> str:
        """Put the endpoint back as it was before this deployment; say what was done."""
        wait = aws_waits.endpoint(self.config["EndpointConfig"], self.check_interval)
        if previous is None:
            self.hook.conn.delete_endpoint(EndpointName=self.endpoint_name)
            done = f"endpoint {self.endpoint_name} deleted: it served no model before this deployment"
        else:
            self.hook.conn.update_endpoint(EndpointName=self.endpoint_name, EndpointConfigName=previous)
            self.wait_in_service(wait)
            done = f"endpoint {self.endpoint_name} rolled back to {previous}"
        self.log.error("%s; the registry is unchanged", done)
        return done + "; the registry is unchanged (no champion crowned)"


@airflow_outcome
def _fail(error: Exception):
    """Raise ``error`` as the task's outcome: a Refusal fails without retry, a Fault is retried."""
    raise error


class GlueEtlOperator(GlueJobOperator):
    """The provider's Glue operator: waits sized by the job's ``Timeout``; a run that failed is judged by its ``ErrorMessage``.

    The script's refusal of its data (``GLUE_REFUSAL_MARKER``) fails the task without retry;
    any other failure is retried. Judged after the synchronous wait and after the trigger
    (``resume_execution``, which also receives a trigger's failure).
    """

    def execute(self, context):
        wait = aws_waits.glue(self.create_job_kwargs or {}, self.waiter_delay)
        self.waiter_max_attempts = wait.max_attempts
        return self._judged(context, super().execute, context)

    def resume_execution(self, next_method, next_kwargs, context):
        return self._judged(context, super().resume_execution, next_method, next_kwargs, context)

    def _judged(self, context, call, *args):
        try:
            return call(*args)
        except AirflowFailException:
            raise
        except AirflowException:
            ti = context["ti"]
            run_id = self._job_run_id or ti.xcom_pull(task_ids=ti.task_id, key="glue_job_run_id")
            if not run_id:
                raise
            run = self.hook.conn.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"]
            if run["JobRunState"] == "SUCCEEDED":
                raise
            _fail(glue_run_failure(self.job_name, run_id, run["JobRunState"], run.get("ErrorMessage", "")))


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
