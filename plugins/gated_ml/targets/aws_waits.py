"""How long the `aws` target waits for each job: derived from the job's own time limit, never the provider's defaults.

The provider's waiters stop after a fixed number of polls (60 polls for training and
transform, 480 for the SageMaker trigger, 75 for Glue): a 2-hour job polled every 30 s
would be declared lost after 30 minutes while it still runs, and the retry would start a
second one. Here every wait is the request's own limit plus the time AWS takes to get a
job going (:data:`PROVISIONING_SECONDS`), polled every ``delay`` seconds:

- training: ``StoppingCondition.MaxRuntimeInSeconds`` (``MaxWaitTimeInSeconds`` with managed spot, which includes the waiting for spot capacity);
- tuning: the job's own ``ResourceLimits.MaxRuntimeInSeconds`` when set, else its training jobs in
  rounds of ``MaxParallelTrainingJobs``, each round one training job's limit and provisioning;
- transform: one ``ModelClientConfig.InvocationsTimeoutInSeconds`` times (``InvocationsMaxRetries`` + 1)
  per mini-batch (the input's bytes / ``MaxPayloadInMB``, shared by the instances), SageMaker's
  defaults (600 s, 3 retries) when the request sets none;
- Glue: ``Timeout`` (minutes);
- endpoint: each variant's ``ModelDataDownloadTimeoutInSeconds`` + ``ContainerStartupHealthCheckTimeoutInSeconds``
  (the maximum SageMaker allows, 3600 s each, when the request sets none).

Pure functions: no AWS call, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PROVISIONING_SECONDS = 15 * 60  # instances and the image before a SageMaker job's clock starts, and uploading its output after
GLUE_START_SECONDS = 10 * 60  # a Glue run's start-up before its Timeout counts
INVOCATION_TIMEOUT_DEFAULT, INVOCATION_RETRIES_DEFAULT = 600, 3  # CreateTransformJob ModelClientConfig defaults
ENDPOINT_STEP_MAX = 3600  # the largest ModelDataDownloadTimeoutInSeconds / ContainerStartupHealthCheckTimeoutInSeconds
MB = 1024 * 1024


@dataclass(frozen=True)
class Wait:
    """How long to wait for one job: ``seconds`` in all, polled every ``delay`` seconds ``max_attempts`` times."""

    seconds: int
    delay: int

    @property
    def max_attempts(self) -> int:
        return math.ceil(self.seconds / self.delay) + 1


def _wait(seconds: float, delay: int) -> Wait:
    if delay < 1:
        raise ValueError(f"poll interval {delay!r} s: must be at least 1 second ([gated_ml] poll_seconds)")
    return Wait(seconds=math.ceil(seconds), delay=delay)


def training_seconds(request: dict) -> int:
    stop = request["StoppingCondition"]
    return max(stop["MaxRuntimeInSeconds"], stop.get("MaxWaitTimeInSeconds", 0))


def training(request: dict, delay: int) -> Wait:
    """``CreateTrainingJob``."""
    return _wait(training_seconds(request) + PROVISIONING_SECONDS, delay)


def tuning(request: dict, delay: int) -> Wait:
    """``CreateHyperParameterTuningJob``."""
    limits = request["HyperParameterTuningJobConfig"]["ResourceLimits"]
    own = limits.get("MaxRuntimeInSeconds")
    if own:
        return _wait(own + PROVISIONING_SECONDS, delay)
    rounds = math.ceil(limits["MaxNumberOfTrainingJobs"] / limits["MaxParallelTrainingJobs"])
    return _wait(rounds * (training_seconds(request["TrainingJobDefinition"]) + PROVISIONING_SECONDS), delay)


def transform(request: dict, input_bytes: int, delay: int) -> Wait:
    """``CreateTransformJob`` over ``input_bytes`` of input."""
    client = request.get("ModelClientConfig", {})
    per_call = client.get("InvocationsTimeoutInSeconds", INVOCATION_TIMEOUT_DEFAULT) * (client.get("InvocationsMaxRetries", INVOCATION_RETRIES_DEFAULT) + 1)
    payload = request.get("MaxPayloadInMB", 6) * MB or MB  # 0 = unlimited payload: count one mini-batch per MB
    calls = max(1, math.ceil(input_bytes / payload / request["TransformResources"]["InstanceCount"]))
    return _wait(PROVISIONING_SECONDS + calls * per_call, delay)


def glue(create_job: dict, delay: int) -> Wait:
    """``glue.CreateJob`` (its ``Timeout`` is in minutes; Glue's default is 2880)."""
    return _wait(create_job.get("Timeout", 2880) * 60 + GLUE_START_SECONDS, delay)


def endpoint(endpoint_config: dict, delay: int) -> Wait:
    """``CreateEndpoint`` / ``UpdateEndpoint`` to ``endpoint_config`` (a ``CreateEndpointConfig`` request)."""
    steps = [
        v.get("ModelDataDownloadTimeoutInSeconds", ENDPOINT_STEP_MAX) + v.get("ContainerStartupHealthCheckTimeoutInSeconds", ENDPOINT_STEP_MAX)
        for v in endpoint_config["ProductionVariants"]
    ]
    return _wait(PROVISIONING_SECONDS + max(steps), delay)
