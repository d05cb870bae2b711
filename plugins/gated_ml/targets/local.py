"""The `local` target: every verb executed on this machine, by the emulator in :mod:`gated_ml.local`.

Each step is one Airflow task that builds the request, runs the verb and reads the answer.
The verbs take the same validated requests AWS would get and answer with the same
Describe shapes; S3 URIs map to the local lake. The runners are imported when a task runs.
"""

from __future__ import annotations

from gated_ml.errors import ResourceNotFound, airflow_outcome
from gated_ml.local import fidelity
from gated_ml.run_params import effective_spec
from gated_ml.targets.base import StepTasks, Target, current_run


class LocalTarget(Target):
    name = "local"

    # --- run time ---------------------------------------------------------------------
    def environment(self):
        from sagemaker.core import image_uris

        from gated_ml.job_requests import XGBOOST_FRAMEWORK_VERSION, Environment
        from gated_ml.settings import bucket, region

        return Environment(
            bucket=bucket(),
            role_arn="arn:aws:iam::000000000000:role/gated-ml-local-sagemaker",
            glue_role_arn="arn:aws:iam::000000000000:role/gated-ml-local-glue",
            image_uri=image_uris.retrieve("xgboost", region=region(), version=XGBOOST_FRAMEWORK_VERSION),
        )

    def runtime_client(self, endpoint: dict):
        from gated_ml.local.hosting import runtime_client

        return runtime_client(endpoint["url"])

    def registry_client(self):
        from gated_ml.local.model_registry import ModelRegistryClient

        return ModelRegistryClient()

    def run_step(self, step, spec, env, run, **inputs):
        """Build the step's request, run its verb here, read the answer; ``None`` when there is nothing to do.

        The step sees the spec with the run's params applied (:func:`gated_ml.run_params.effective_spec`).
        """
        spec = effective_spec(spec, run)
        request = step.request(spec, env, run, **inputs)
        if request is None:
            return None
        fidelity.admit(step.verb, request)  # a field this machine would not honour is refused before anything runs
        verb = getattr(self, step.verb)
        if step.check is not None:
            describe = verb(request, check=lambda client: step.check(spec, env, run, client, **inputs))
        else:
            describe = verb(request)
        return step.result(spec, env, run, request, describe, **inputs)

    # --- parse time -------------------------------------------------------------------
    def arrival_sensor(self, spec, task_id: str, batch_uri: str | None = None, arrival=None):
        from gated_ml import settings
        from gated_ml.stages import data
        from gated_ml.targets.arrival import LocalKeySensor

        arrival = arrival or spec.arrival
        return LocalKeySensor(
            task_id=task_id,
            batch_uri=batch_uri or data.batch_uri(spec, settings.bucket(), "{{ ds }}"),
            deferrable=settings.deferrable(),
            poke_interval=arrival.poke_seconds,
            timeout=arrival.timeout_minutes * 60,
        )

    def task(self, step, spec, task_id: str, **inputs):
        from airflow.sdk import task

        @task(task_id=task_id)
        @airflow_outcome
        def run_locally(inputs: dict):  # one dict, not **kwargs: Airflow passes its context into **kwargs
            return self.run_step(step, spec, self.environment(), current_run(), **inputs)

        output = run_locally(inputs)
        return StepTasks(head=output, output=output)

    # --- the verbs --------------------------------------------------------------------
    def run_glue_job(self, request: dict) -> dict:
        from gated_ml.local.glue import run_job

        return run_job(request["CreateJob"], request["StartJobRun"])

    def register_partition(self, request: dict) -> dict:
        from gated_ml.local.catalog import create_partition

        return create_partition(request["CreateTable"], request["CreatePartition"])

    def train(self, request: dict) -> dict:
        from gated_ml.local.training import run_training_job

        return run_training_job(request)

    def tune(self, request: dict) -> dict:
        from gated_ml.local.tuning import run_tuning_job

        return run_tuning_job(request)

    def create_model(self, request: dict) -> dict:
        from gated_ml.local.hosting import create_model

        return create_model(request)

    def transform(self, request: dict) -> dict:
        from gated_ml.local.control_plane import ControlPlane
        from gated_ml.local.transform import run_transform_job

        control = ControlPlane()
        model = control.get("models", request["ModelName"])
        if model is None:
            raise ResourceNotFound(f"transform job {request['TransformJobName']}: model {request['ModelName']} does not exist")
        return run_transform_job(request, model, control)

    def deploy_endpoint(self, request: dict, check=None) -> dict:
        """Create or update the endpoint; the new model serves only after ``check(client)`` passed (else rollback)."""
        from gated_ml.local import hosting

        config = hosting.create_endpoint_config(request["EndpointConfig"])
        verify = (lambda url: check(hosting.runtime_client(url))) if check else None
        return hosting.create_or_update_endpoint({**request["Endpoint"], "EndpointConfigName": config["EndpointConfigName"]}, verify=verify)

    def register_model_version(self, request: dict) -> dict:
        from gated_ml.local.model_registry import create_model_package

        return create_model_package(request)
