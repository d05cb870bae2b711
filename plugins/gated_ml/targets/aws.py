"""The `aws` target: every verb through the Amazon provider's operators (on AWS, or on an emulator).

For each verb, :data:`VERBS` holds once what it needs: the operator(s) built at parse time,
the operator arguments taken from the request at run time, the Describe call that reads the
answer afterwards, and how to find an earlier attempt's job. :meth:`AwsTarget.task` builds
the same three-part shape for every step:

    <task_id>_request  →  provider operator(s), the main one named <task_id>  →  <task_id>_result

The request task builds and validates the request when the run starts (never at parse
time); the operators wait deferrably by default, for as long as each job's own time limit
allows (:mod:`gated_ml.targets.aws_waits`), and push only the name they used (a retry after a
failed job, model or endpoint config uses a fresh one; :mod:`gated_ml.targets.aws_operators`);
the result task reads the Describe answer of the resource under that name through the same
stage function the `local` target uses.

``deploy_endpoint`` smoke-tests the updated endpoint inside its operator (``Step.check``) and
rolls it back when the test fails; only then does its result task crown the model.

Nothing here runs at parse time but operator construction. The bucket and the role ARNs
come from Airflow Variables (``gated_ml_bucket``, ``gated_ml_sagemaker_role_arn``,
``gated_ml_glue_role_arn``), the region from the AWS connection (``[gated_ml] aws_conn_id``),
the XGBoost image URI from the ``sagemaker`` SDK for that region.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gated_ml import settings
from gated_ml.errors import Skip, airflow_outcome
from gated_ml.run_params import effective_spec
from gated_ml.targets.base import StepTasks, Target, current_run


def _waiting(spec) -> dict:
    """Waiting settings of the SageMaker operators: deferrable by default; how long is derived from each request when it runs."""
    return {
        "aws_conn_id": settings.aws_conn_id(),
        "wait_for_completion": True,
        "deferrable": settings.deferrable(),
        "check_interval": settings.poll_seconds(),
        "do_xcom_push": False,  # whole Describe* answers stay out of XCom; the result task reads what is needed
    }


# --- per verb: operators (parse time), their arguments and the answer (run time) -------------
def _glue_operators(task_id, out, spec):
    from gated_ml.targets.aws_operators import GlueEtlOperator

    return [
        GlueEtlOperator(
            task_id=task_id,
            job_name=out["job_name"],
            script_location=out["script_location"],
            iam_role_arn=out["iam_role_arn"],
            create_job_kwargs=out["create_job_kwargs"],
            script_args=out["script_args"],
            update_config=True,
            wait_for_completion=True,
            deferrable=settings.deferrable(),
            job_poll_interval=settings.poll_seconds(),
            waiter_delay=settings.poll_seconds(),
            aws_conn_id=settings.aws_conn_id(),
        )
    ]


def _glue_arguments(request: dict) -> dict:
    create, start = request["CreateJob"], request["StartJobRun"]
    kwargs = {k: create[k] for k in ("GlueVersion", "WorkerType", "NumberOfWorkers", "Timeout", "ExecutionProperty", "DefaultArguments", "Tags")}
    return {
        "job_name": create["Name"],
        "script_location": create["Command"]["ScriptLocation"],
        "iam_role_arn": create["Role"],
        "create_job_kwargs": kwargs,
        "script_args": start["Arguments"],
    }


def _catalog_operators(task_id, out, spec):
    from airflow.providers.amazon.aws.operators.glue_catalog import GlueCatalogCreateDatabaseOperator

    from gated_ml.targets.aws_operators import CatalogPartitionOperator, CatalogTableOperator

    conn = {"aws_conn_id": settings.aws_conn_id()}
    where = {"database_name": out["database_name"], "table_name": out["table_name"]}
    return [
        GlueCatalogCreateDatabaseOperator(task_id="catalog_database", database_name=out["database_name"], if_exists="skip", **conn),
        CatalogTableOperator(task_id="catalog_table", table_input=out["table_input"], if_exists="skip", **where, **conn),
        CatalogPartitionOperator(task_id=task_id, partition_input=out["partition_input"], if_exists="skip", **where, **conn),
    ]


def _catalog_arguments(request: dict) -> dict:
    table, partition = request["CreateTable"], request["CreatePartition"]
    return {
        "database_name": table["DatabaseName"],
        "table_name": table["TableInput"]["Name"],
        "table_input": table["TableInput"],
        "partition_input": partition["PartitionInput"],
    }


def _train_operators(task_id, out, spec):
    from gated_ml.targets.aws_operators import ReattachingTrainingOperator

    return [ReattachingTrainingOperator(task_id=task_id, config=out["config"], action_if_job_exists="fail", print_log=False, **_waiting(spec))]


def _tune_operators(task_id, out, spec):
    from gated_ml.targets.aws_operators import ReattachingTuningOperator

    return [ReattachingTuningOperator(task_id=task_id, config=out["config"], **_waiting(spec))]


def _model_operators(task_id, out, spec):
    from gated_ml.targets.aws_operators import FreshNameModelOperator

    return [FreshNameModelOperator(task_id=task_id, config=out["config"], aws_conn_id=settings.aws_conn_id(), do_xcom_push=False)]


def _transform_operators(task_id, out, spec):
    from gated_ml.targets.aws_operators import ReattachingTransformOperator

    return [ReattachingTransformOperator(task_id=task_id, config=out["config"], action_if_job_exists="fail", check_if_model_exists=False, **_waiting(spec))]


def _endpoint_operators(task_id, out, spec, smoke_test):
    from gated_ml.targets.aws_operators import DeployEndpointOperator

    return [DeployEndpointOperator(task_id=task_id, config=out["config"], smoke_test=smoke_test, smoke_inputs=out["inputs"], **_waiting(spec))]


def _package_operators(task_id, out, spec):
    from gated_ml.targets.aws_operators import RegisterModelVersionOperator

    return [
        RegisterModelVersionOperator(
            task_id=task_id,
            image_uri=out["image_uri"],
            model_url=out["model_url"],
            package_group_name=out["group"],
            package_desc=out["description"],
            extras=out["extras"],
            aws_conn_id=settings.aws_conn_id(),
        )
    ]


def _package_arguments(request: dict) -> dict:
    container = request["InferenceSpecification"]["Containers"][0]
    return {
        "image_uri": container["Image"],
        "model_url": container["ModelDataUrl"],
        "group": request["ModelPackageGroupName"],
        "description": request["ModelPackageDescription"],
        "extras": {k: v for k, v in request.items() if k != "ModelPackageGroupName"},
    }


@dataclass(frozen=True)
class AwsVerb:
    """What one verb needs on `aws`; see the module docstring."""

    operators: Callable  # (task_id, request-task output, spec[, smoke_test]) -> [operator, ...], chained in order, the last named task_id
    arguments: Callable[[dict], dict] = lambda request: {"config": request}
    describe: Callable | None = None  # (sagemaker client, request) -> the Describe answer after the operators
    describe_returned: Callable | None = None  # (sagemaker client, the main operator's return value) -> the Describe answer
    # where the request names what the operator creates (a retry may create it under a fresh name), then where else it refers to it
    name_paths: tuple[tuple[str, ...], ...] = ()


VERBS: dict[str, AwsVerb] = {
    "run_glue_job": AwsVerb(_glue_operators, _glue_arguments),
    "register_partition": AwsVerb(_catalog_operators, _catalog_arguments),
    "train": AwsVerb(_train_operators, describe=lambda c, r: c.describe_training_job(TrainingJobName=r["TrainingJobName"]), name_paths=(("TrainingJobName",),)),
    "tune": AwsVerb(
        _tune_operators,
        describe=lambda c, r: c.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=r["HyperParameterTuningJobName"]),
        name_paths=(("HyperParameterTuningJobName",),),
    ),
    "create_model": AwsVerb(_model_operators, name_paths=(("ModelName",),)),
    "transform": AwsVerb(
        _transform_operators,
        lambda request: {"config": {"Transform": request}},
        describe=lambda c, r: c.describe_transform_job(TransformJobName=r["TransformJobName"]),
        name_paths=(("TransformJobName",),),
    ),
    "deploy_endpoint": AwsVerb(
        _endpoint_operators,
        describe=lambda c, r: c.describe_endpoint(EndpointName=r["Endpoint"]["EndpointName"]),
        name_paths=(("EndpointConfig", "EndpointConfigName"), ("Endpoint", "EndpointConfigName")),
    ),
    # the operator returns the new package's ARN: the result reads the package as the registry describes it
    "register_model_version": AwsVerb(_package_operators, _package_arguments, describe_returned=lambda c, arn: c.describe_model_package(ModelPackageName=arn)),
}


class AwsTarget(Target):
    name = "aws"

    # --- run time ---------------------------------------------------------------------
    @staticmethod
    def client(service: str):
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=settings.aws_conn_id(), client_type=service).conn

    def region(self) -> str:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=settings.aws_conn_id(), client_type="sts").region_name or settings.region()

    def environment(self):
        from airflow.sdk import Variable
        from sagemaker.core import image_uris

        from gated_ml.job_requests import XGBOOST_FRAMEWORK_VERSION, Environment

        return Environment(
            bucket=Variable.get("gated_ml_bucket"),
            role_arn=Variable.get("gated_ml_sagemaker_role_arn"),
            glue_role_arn=Variable.get("gated_ml_glue_role_arn"),
            image_uri=image_uris.retrieve("xgboost", region=self.region(), version=XGBOOST_FRAMEWORK_VERSION),
        )

    def runtime_client(self, endpoint: dict):
        return self.client("sagemaker-runtime")

    def registry_client(self):
        return self.client("sagemaker")

    @staticmethod
    def as_ran(verb: AwsVerb, request: dict, name: str | None) -> dict:
        """The request as its operator sent it: under the name it used (a retry's fresh one), for the result task."""
        import copy

        from gated_ml.targets.aws_operators import set_in

        if name is None:
            return request
        ran = copy.deepcopy(request)
        for path in verb.name_paths:
            set_in(ran, path, name)
        return ran

    def operators(self, step, verb: AwsVerb, task_id: str, built, spec) -> list:
        """The verb's operators; a step with a ``check`` (the smoke test) gets it, run by its operator before the result task."""
        if step.check is None:
            return verb.operators(task_id, built, spec)

        def smoke_test(client, checked_inputs: dict):
            run = current_run()
            return step.check(effective_spec(spec, run), self.environment(), run, client, **checked_inputs)

        return verb.operators(task_id, built, spec, smoke_test)

    # --- parse time -------------------------------------------------------------------
    def arrival_sensor(self, spec, task_id: str, batch_uri: str | None = None, arrival=None):
        from gated_ml.stages import data
        from gated_ml.targets.aws_operators import S3BatchSensor

        arrival = arrival or spec.arrival
        return S3BatchSensor(
            task_id=task_id,
            batch_uri=batch_uri or data.batch_uri(spec, "{{ var.value.gated_ml_bucket }}", "{{ ds }}"),
            deferrable=settings.deferrable(),
            poke_interval=arrival.poke_seconds,
            timeout=arrival.timeout_minutes * 60,
            aws_conn_id=settings.aws_conn_id(),
        )

    def task(self, step, spec, task_id: str, **inputs):
        from airflow.sdk import chain, task

        verb = VERBS[step.verb]

        @task(task_id=f"{task_id}_request", multiple_outputs=True)
        @airflow_outcome
        def build_request(inputs: dict):  # one dict, not **kwargs: Airflow passes its context into **kwargs
            run = current_run()
            request = step.request(effective_spec(spec, run), self.environment(), run, **inputs)
            if request is None:
                raise Skip(f"{step.verb}: nothing to do for this run")
            return {"request": request, **verb.arguments(request), **({"inputs": inputs} if step.check else {})}

        # an optional step's skipped request still gives downstream a result: None
        @task(task_id=f"{task_id}_result", trigger_rule="none_failed" if step.optional else "all_success")
        @airflow_outcome
        def read_result(built: dict | None, inputs: dict):
            if built is None:
                return None
            from airflow.sdk import get_current_context

            from gated_ml.targets.aws_operators import NAME_XCOM

            ti = get_current_context()["ti"]
            request = self.as_ran(verb, built["request"], ti.xcom_pull(task_ids=operators[-1].task_id, key=NAME_XCOM))
            describe = verb.describe(self.client("sagemaker"), request) if verb.describe else None
            if verb.describe_returned is not None:  # read through what the main operator returned (e.g. an ARN)
                describe = verb.describe_returned(self.client("sagemaker"), ti.xcom_pull(task_ids=operators[-1].task_id))
            run = current_run()
            return step.result(effective_spec(spec, run), self.environment(), run, request, describe, **inputs)

        built = build_request(inputs)
        operators = self.operators(step, verb, task_id, built, spec)
        result = read_result(built, inputs)
        chain(built, *operators, result)
        return StepTasks(head=built, output=result)
