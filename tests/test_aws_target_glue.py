"""The Glue job on `aws`: a refusal inside the script fails the task without retry; other failures are retried.

moto runs no Glue script: the tests make its job runs end ``FAILED`` with the ``ErrorMessage``
Glue reports for the script's uncaught exception (patched on moto's job-run object).
"""

import ast

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from aws_kit import REGION, context, mocked_aws
from conftest import ROOT
from gated_ml import batch_commit, errors
from gated_ml import job_requests as jr
from gated_ml.errors import GlueJobFault, JobFailed, glue_run_failure
from gated_ml.stages import data
from gated_ml.targets import aws_waits
from gated_ml.targets.aws import _glue_arguments
from gated_ml.targets.aws_operators import GlueEtlOperator

CODE = {
    "glue_script_uri": "s3://gated-ml-lake/vertebral_column/code/abc/etl.py",
    "raw_formats_uri": "s3://gated-ml-lake/vertebral_column/code/abc/raw_formats.py",
}
REFUSAL = "Error Category: UNCLASSIFIED_ERROR; EtlRefusal: GATED_ML_REFUSED: column 'pelvic_incidence' must be double; found unparseable values ['abc']"


def _ending(monkeypatch, state: str, message: str):
    """moto's Glue job runs end ``state`` with ``message``, as Glue reports a script's failure."""
    from moto.glue.models import FakeJobRun

    monkeypatch.setattr(FakeJobRun, "status", property(lambda self: state))
    original = FakeJobRun.as_dict
    monkeypatch.setattr(FakeJobRun, "as_dict", lambda self: {**original(self), "ErrorMessage": message})


def _operator(spec, env, run, deferrable=False):
    arguments = _glue_arguments(data.glue_request(spec, env, run, CODE))
    return GlueEtlOperator(
        task_id="glue_etl",
        **arguments,
        update_config=True,
        wait_for_completion=True,
        deferrable=deferrable,
        job_poll_interval=0.1,
        waiter_delay=1,
        aws_conn_id=None,
        region_name=REGION,
    )


@pytest.fixture
def aws(monkeypatch):
    with mocked_aws(monkeypatch):
        yield


def test_a_refusal_inside_the_glue_script_fails_the_task_without_retry(aws, monkeypatch, spec, env, run):
    _ending(monkeypatch, "FAILED", REFUSAL)
    with pytest.raises(AirflowFailException) as failed:  # not retried
        _operator(spec, env, run).execute(context())
    assert "refused the batch: column 'pelvic_incidence' must be double" in str(failed.value) and "vertebral-column-etl" in str(failed.value)


def test_any_other_glue_failure_is_retried(aws, monkeypatch, spec, env, run):
    _ending(monkeypatch, "FAILED", "Error Category: OUT_OF_MEMORY_ERROR; java.lang.OutOfMemoryError: Java heap space")
    with pytest.raises(GlueJobFault, match="OutOfMemoryError"):  # a Fault: Airflow retries it
        _operator(spec, env, run).execute(context())


def test_a_refusal_reported_through_the_trigger_fails_without_retry(aws, monkeypatch, spec, env, run):
    _ending(monkeypatch, "RUNNING", "")
    operator, ctx = _operator(spec, env, run, deferrable=True), context()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(ctx)
    assert deferred.value.trigger.attempts == aws_waits.glue(operator.create_job_kwargs, 1).max_attempts
    _ending(monkeypatch, "FAILED", REFUSAL)
    resumed = _operator(spec, env, run, deferrable=True)  # a fresh operator, as after the trigger: the run id comes from XCom
    with pytest.raises(AirflowFailException, match="refused the batch"):
        resumed.resume_execution("__fail__", {"error": "Trigger failure", "traceback": ["AWS Glue job failed."]}, ctx)


def test_the_synchronous_wait_is_sized_by_the_jobs_timeout(aws, monkeypatch, spec, env, run):
    _ending(monkeypatch, "SUCCEEDED", "")
    operator = _operator(spec, env, run)
    operator.execute(context())
    timeout = jr.glue_create_job(spec, env, CODE["glue_script_uri"])["Timeout"]
    assert operator.waiter_max_attempts == aws_waits.glue({"Timeout": timeout}, 1).max_attempts > 75  # not the provider's 75


def test_a_glue_failure_is_judged_by_its_message_alone():
    assert isinstance(glue_run_failure("j", "jr_1", "FAILED", REFUSAL), JobFailed)
    assert isinstance(glue_run_failure("j", "jr_1", "TIMEOUT", "Job run timed out"), GlueJobFault)
    assert isinstance(glue_run_failure("j", "jr_1", "FAILED", ""), GlueJobFault)


def test_the_glue_script_uses_the_markers_the_package_reads():
    """``include/glue/etl.py`` runs on Glue without the package: its constants must equal the package's."""
    tree = ast.parse((ROOT / "include/glue/etl.py").read_text())
    constants = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant)
    }
    assert constants["REFUSAL_MARKER"] == errors.GLUE_REFUSAL_MARKER
    assert constants["COMMIT_MARKER"] == batch_commit.COMMIT_MARKER
