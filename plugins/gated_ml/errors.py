"""The project's errors, in two families that decide whether Airflow retries a task.

- :class:`Refusal`: the input, the spec or the model is not acceptable. Retrying cannot
  change the answer (the data will be the same), so the task fails at once, without retry,
  and says why. Gates, the model gate, a stale suite file, a request AWS would reject, a
  Glue script that refused its batch, a job whose own code failed.
- :class:`Fault`: something broke that may work on a second try (a process that did not
  start, a port, a service error). The task fails and Airflow retries it.
- :class:`Skip`: not an error: this task has nothing to do for this run (a model waiting
  for approval is not deployed); the task is marked skipped.

Every module imports its error classes from here, at the top; this module imports nothing
heavy, so it is safe at DAG parse time. :func:`airflow_outcome` maps the families onto
Airflow's exceptions in one place, for every task the factory builds.
"""

from __future__ import annotations

import functools


class Refusal(Exception):
    """Not acceptable as it is: fail the task without retry."""


class Fault(RuntimeError):
    """A failure a retry may cure: fail the task and let Airflow retry it."""


class Skip(Exception):  # not an error: the task is skipped
    """Nothing to do for this run: the task is skipped, with the reason in its log."""


# --- refusals ---------------------------------------------------------------------------
class SpecError(Refusal, ValueError):
    """A pipeline spec that cannot be used; the message names the file, the field and what is allowed."""


class InvalidParams(Refusal, ValueError):
    """A run's params (its trigger form or ``conf``) out of their allowed range; the message names the param, the value and the range."""


class RequestValidationError(Refusal, ValueError):
    """A request AWS would reject (botocore's service model), found before it is sent."""


class GateFailed(Refusal):
    """A critical expectation failed: the batch must not go further."""


class StaleSuite(Refusal):
    """A suite file in ``great_expectations/expectations/`` differs from what its spec generates."""


class ModelGateFailed(Refusal):
    """The model is not good enough to deploy."""


class StageError(Refusal):
    """A stage could not produce its output from this input; the message says why."""


class JobFailed(Refusal):
    """A job ended Failed because of its own input or code (SageMaker ``ClientError``, a Glue script's refusal)."""


class ResourceNotFound(Refusal):
    """A request names a model, config or job that does not exist (SageMaker's ``ValidationException``)."""


class ResourceInUse(Refusal):
    """A name is taken by a different request (SageMaker's ``ResourceInUse``)."""


class SmokeTestFailed(Refusal):
    """The endpoint does not answer as batch transform does: it must not take traffic."""


# --- faults -----------------------------------------------------------------------------
class ContainerError(Fault):
    """A local container (model server, router) did not start or stay healthy."""


class TransformError(Fault):
    """A batch transform could not be completed."""


class GlueJobFault(Fault):
    """A Glue job run failed for a reason that is not its data (out of memory, a lost executor)."""


class SmokeTestUnanswered(Fault):
    """The endpoint could not answer the smoke test (``ModelError``, a 5xx, a throttle, a lost connection): roll back, retry.

    Unlike :class:`SmokeTestFailed` (the endpoint answered, and its answers differ from batch
    transform's, which a retry cannot change), this says nothing about the model's answers.
    """


class UncommittedBatch(Refusal):
    """A curated prefix without its commit marker: its writer has not finished (or failed); nothing under it may be read."""


class EmulatorMismatch(Refusal):
    """The AWS emulator cannot run with what is installed (another moto version than it is pinned to)."""


# --- skips ------------------------------------------------------------------------------
class SkipDeployment(Skip):
    """This run's model is not to be deployed (pending approval, or a newer model serves)."""


# --- a Glue job run's failure, read from its ErrorMessage ---------------------------------------
# The Glue script (include/glue/etl.py, which cannot import this package) raises its refusals
# with this text in the message; Glue reports the uncaught exception in the job run's
# ErrorMessage, and the local runner reads it from the script's stderr. Keep the two in step
# (tests/test_aws_target_glue.py checks).
GLUE_REFUSAL_MARKER = "GATED_ML_REFUSED:"


def glue_run_failure(job: str, run_id: str | None, state: str, message: str) -> Refusal | Fault:
    """The error of a failed Glue job run: the script refused its data (never retried) or something else broke (retried)."""
    if GLUE_REFUSAL_MARKER in message:
        reason = message.split(GLUE_REFUSAL_MARKER, 1)[1].strip()
        return JobFailed(f"Glue job {job} (run {run_id}) refused the batch: {reason}; fix the data or the spec, a retry would refuse it again")
    return GlueJobFault(f"Glue job {job} (run {run_id}) ended {state}: {message or 'no error message'}")


def airflow_outcome(fn):
    """Run ``fn``; a :class:`Refusal` fails the task without retry, a :class:`Skip` skips it.

    A :class:`Fault` (and anything unexpected) propagates unchanged, so Airflow retries it.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        try:
            return fn(*args, **kwargs)
        except Refusal as e:
            raise AirflowFailException(str(e)) from None
        except Skip as e:
            raise AirflowSkipException(str(e)) from None

    return wrapper
