"""The interface every target implements: one verb per AWS call the pipeline makes.

A target turns a :class:`~gated_ml.steps.Step` (a stage's request builder and result
reader) into the task(s) of a DAG. The verbs, each taking the validated request and
answering in the shape of the matching Describe call:

==========================  ===========================================  ==================
verb                        request                                      answer
==========================  ===========================================  ==================
``run_glue_job``            ``{"CreateJob", "StartJobRun"}``             ``GetJobRun``
``register_partition``      ``{"CreateTable", "CreatePartition"}``       ``GetPartition``
``train``                   ``CreateTrainingJob``                        ``DescribeTrainingJob``
``tune``                    ``CreateHyperParameterTuningJob``            ``DescribeHyperParameterTuningJob``
``create_model``            ``CreateModel``                              ``DescribeModel``
``transform``               ``CreateTransformJob``                       ``DescribeTransformJob``
``deploy_endpoint``         ``{"EndpointConfig", "Endpoint"}`` + check   ``DescribeEndpoint``
``register_model_version``  ``CreateModelPackage``                       ``DescribeModelPackage``
==========================  ===========================================  ==================

`local` implements each verb as a method run inside one task; `aws` builds, for each verb,
the Amazon provider's operator between a request task and a result task. The DAG factory
calls :meth:`Target.task` and never asks which target it has.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

VERBS = ("run_glue_job", "register_partition", "train", "tune", "create_model", "transform", "deploy_endpoint", "register_model_version")


@dataclass(frozen=True)
class StepTasks:
    """The task(s) a target built for one step: set upstream dependencies on ``head``; ``output`` is the result's XComArg."""

    head: Any
    output: Any


class Target(abc.ABC):
    """Where the pipeline's AWS requests run."""

    name: str

    @abc.abstractmethod
    def environment(self):
        """The account-specific values requests are built with (:class:`~gated_ml.job_requests.Environment`); run time only."""

    @abc.abstractmethod
    def runtime_client(self, endpoint: dict):
        """A stock boto3 ``sagemaker-runtime`` client for the deployed ``endpoint`` (a deploy step's result)."""

    @abc.abstractmethod
    def registry_client(self):
        """A boto3-shaped ``sagemaker`` client for the Model Registry calls (describe, list, update model packages); run time only."""

    @abc.abstractmethod
    def arrival_sensor(self, spec, task_id: str, batch_uri: str | None = None, arrival=None):
        """A deferrable sensor waiting for the run's batch; fails naming it after ``arrival.timeout_minutes``.

        ``batch_uri`` (a template): the key to wait for, by default the run's ``landing/ds=<ds>/`` file;
        ``arrival``: the waiting settings, by default the spec's ``arrival``.
        """

    @abc.abstractmethod
    def task(self, step, spec, task_id: str, **inputs) -> StepTasks:
        """The task(s) that run ``step`` for ``spec`` with upstream ``inputs`` (XComArgs).

        Called at DAG parse time: builds tasks only. Requests are built when the tasks run.
        """


def current_run():
    """The :class:`~gated_ml.job_requests.Run` of the task being executed."""
    from airflow.sdk import get_current_context

    from gated_ml.job_requests import Run

    return Run.from_context(get_current_context())
