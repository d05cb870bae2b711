"""What the emulator adds to moto 5.2.5's API: the calls it lacks and the refusals it does not make.

Guards run before moto sees a call and refuse what AWS refuses (moto overwrites silently):
a second training or transform job of a name (``ResourceInUse``), a second model, endpoint
config or endpoint of a name (``ValidationException`` "Cannot create already existing ...",
the message the provider's endpoint operator falls back to an update on), a transform job
for a model that does not exist.

Calls moto lacks, answered here on its backends: SageMaker ``UpdateEndpoint``,
``StopTrainingJob``, ``StopTransformJob``, ``StopHyperParameterTuningJob``; Glue ``UpdateJob``
(the definition overwritten, as AWS does) and ``BatchStopJobRun``.
"""

from __future__ import annotations

from gated_ml.emulated_aws import background, endpoints, moto_backends
from gated_ml.emulated_aws.responses import AwsError
from gated_ml.local.control_plane import ControlPlane


def _arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{moto_backends.ACCOUNT}:{kind}/{name}"


# --- guards: refuse before moto ---------------------------------------------------------------
def _unique_job(collection: str, kind: str, key: str):
    def guard(region: str, params: dict, emulator) -> None:
        name = params[key]
        if name in getattr(moto_backends.sagemaker(region), collection):
            raise AwsError(
                "ResourceInUse",
                f"{kind} names must be unique within an AWS account and region, and a {kind} with this name already exists ({_arn(region, kind, name)})",
            )

    return guard


def _unique_resource(collection: str, kind: str, key: str, what: str):
    def guard(region: str, params: dict, emulator) -> None:
        name = params[key]
        if name in getattr(moto_backends.sagemaker(region), collection):
            raise AwsError("ValidationException", f'Cannot create already existing {what} "{_arn(region, kind, name)}".')

    return guard


def _transform_guard(region: str, params: dict, emulator) -> None:
    _unique_job("transform_jobs", "transform-job", "TransformJobName")(region, params, emulator)
    if params["ModelName"] not in moto_backends.sagemaker(region)._models:
        raise AwsError("ValidationException", f'Could not find model "{_arn(region, "model", params["ModelName"])}".')


GUARDS = {
    ("sagemaker", "CreateTrainingJob"): _unique_job("training_jobs", "training-job", "TrainingJobName"),
    ("sagemaker", "CreateTransformJob"): _transform_guard,
    ("sagemaker", "CreateModel"): _unique_resource("_models", "model", "ModelName", "model"),
    ("sagemaker", "CreateEndpointConfig"): _unique_resource("endpoint_configs", "endpoint-config", "EndpointConfigName", "endpoint configuration"),
    ("sagemaker", "CreateEndpoint"): _unique_resource("endpoints", "endpoint", "EndpointName", "endpoint"),
}


# --- calls moto lacks -------------------------------------------------------------------------
def update_endpoint(region: str, params: dict, emulator) -> dict:
    backend = moto_backends.sagemaker(region)
    name, config = params["EndpointName"], params["EndpointConfigName"]
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise AwsError("ValidationException", f'Could not find endpoint "{_arn(region, "endpoint", name)}".')
    if config not in backend.endpoint_configs:
        raise AwsError("ValidationException", f'Could not find endpoint configuration "{_arn(region, "endpoint-config", config)}".')
    if endpoint.endpoint_status != "InService":
        raise AwsError("ValidationException", f'Cannot update in-progress endpoint "{endpoint.arn}".')
    fault = emulator.faults.take("UpdateEndpoint", "fail_job")
    endpoints.start(region, name, config, emulator.requests, updating=True, fail_reason=fault.message if fault else None)
    return {"EndpointArn": endpoint.arn}


def _stop(collection: str, key: str, status: str, kind: str, work_dirs):
    def stop(region: str, params: dict, emulator) -> dict:
        name = params[key]
        job = getattr(moto_backends.sagemaker(region), collection).get(name)
        if job is None:
            raise AwsError("ResourceNotFound", f"Requested resource not found: {_arn(region, kind, name)}")
        current = getattr(job, status)
        if current != "InProgress":
            raise AwsError("ValidationException", f"The request was rejected because the {kind} is in status {current}.")
        setattr(job, status, "Stopping")
        background.request_stop(name, work_dirs(name))
        return {}

    return stop


def _work(kind: str):
    return lambda name: [ControlPlane().root / "work" / kind / name]


def _trial_work(name: str):
    folder = ControlPlane().root / "work" / "training-jobs"
    return sorted(folder.glob(f"{name}-*")) if folder.is_dir() else []


def update_glue_job(region: str, params: dict, emulator) -> dict:
    """``UpdateJob``: the job definition is replaced by ``JobUpdate`` (fields it leaves out are reset, as on AWS)."""
    job = moto_backends.glue(region).jobs.get(params["JobName"])
    if job is None:
        raise AwsError("EntityNotFoundException", f"Job {params['JobName']} not found.")
    update = params["JobUpdate"]
    if "Role" not in update or "Command" not in update:
        raise AwsError("InvalidInputException", "JobUpdate must give Role and Command: UpdateJob replaces the whole job definition.")
    from moto.core.utils import utcnow

    job.role, job.command = update["Role"], update["Command"]
    job.description = update.get("Description")
    job.default_arguments = update.get("DefaultArguments", {})
    job.non_overridable_arguments = update.get("NonOverridableArguments")
    job.execution_property = update.get("ExecutionProperty", {})
    job.max_retries = update.get("MaxRetries", 0)
    job.timeout = update.get("Timeout", 2880)
    job.glue_version = update.get("GlueVersion")
    job.worker_type = update.get("WorkerType")
    job.number_of_workers = update.get("NumberOfWorkers")
    job.last_modified_on = utcnow()
    return {"JobName": job.name}


def batch_stop_job_run(region: str, params: dict, emulator) -> dict:
    job = moto_backends.glue(region).jobs.get(params["JobName"])
    if job is None:
        raise AwsError("EntityNotFoundException", f"Job {params['JobName']} not found.")
    runs = {r.job_run_id: r for r in job.job_runs}
    stopped, errors = [], []
    for run_id in params["JobRunIds"]:
        run = runs.get(run_id)
        if run is None or run.status not in ("STARTING", "RUNNING"):
            why = "not found" if run is None else f"in state {run.status}"
            errors.append(
                {"JobName": job.name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": "InvalidInputException", "ErrorMessage": f"Job run {run_id} {why}"}}
            )
            continue
        run.status = "STOPPING"
        script = job.command["ScriptLocation"]
        from gated_ml.lake import local_path

        background.request_stop(run_id, [local_path(script).parent])
        stopped.append({"JobName": job.name, "JobRunId": run_id})
    return {"SuccessfulSubmissions": stopped, "Errors": errors}


EXTENSIONS = {
    ("sagemaker", "UpdateEndpoint"): update_endpoint,
    ("sagemaker", "StopTrainingJob"): _stop("training_jobs", "TrainingJobName", "training_job_status", "training-job", _work("training-jobs")),
    ("sagemaker", "StopTransformJob"): _stop("transform_jobs", "TransformJobName", "transform_job_status", "transform-job", _work("transform-jobs")),
    ("sagemaker", "StopHyperParameterTuningJob"): _stop(
        "hyper_parameter_tuning_jobs", "HyperParameterTuningJobName", "hyper_parameter_tuning_job_status", "hyper-parameter-tuning-job", _trial_work
    ),
    ("glue", "UpdateJob"): update_glue_job,
    ("glue", "BatchStopJobRun"): batch_stop_job_run,
}
