"""One registry: the model package, as SageMaker's Model Registry describes it, holds the approval the deployment reads.

Locally the same records and fields: the local registry answers with exactly the members of
``DescribeModelPackage`` and takes the same calls as a boto3 ``sagemaker`` client (checked
against moto's Model Registry).
"""

from __future__ import annotations

import datetime as dt

import pytest

from gated_ml import job_requests as jr
from gated_ml.errors import RequestValidationError, ResourceNotFound, SkipDeployment
from gated_ml.local.model_registry import ModelRegistryClient

MODEL = "s3://gated-ml-lake/vertebral_column/models/job-1/output/model.tar.gz"
CODE = "s3://gated-ml-lake/vertebral_column/code/abc/sourcedir.tar.gz"


def _request(spec, env, run, decision="PendingManualApproval", model=MODEL):
    return jr.model_package(spec, env, run, model, CODE, 3, decision, training_job="vertebral-column-train-20261101-1", commit="0123abc")


def test_the_package_carries_the_model_its_reports_and_its_origin(spec, env, run):
    request = _request(spec, env, run)
    container = request["InferenceSpecification"]["Containers"][0]
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": CODE}
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation/ds=2026-11-01/metrics.json")
    assert request["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"].endswith("/features/ds=2026-11-01/window.json")
    assert request["MetadataProperties"] == {"GeneratedBy": "vertebral-column-train-20261101-1", "CommitId": "0123abc"}
    assert request["CustomerMetadataProperties"] == {"ds": "2026-11-01", "registry_version": "3"}
    # the same model for the same date: the same token (a retry); another model: another token
    assert _request(spec, env, run)["ClientToken"] == request["ClientToken"]
    assert _request(spec, env, run, model=MODEL.replace("job-1", "job-2"))["ClientToken"] != request["ClientToken"]


def test_local_records_hold_exactly_the_fields_describe_model_package_answers_with(lake, spec, env, run):
    import botocore.session

    output = botocore.session.get_session().get_service_model("sagemaker").operation_model("DescribeModelPackage").output_shape
    client = ModelRegistryClient()
    arn = client.create_model_package(**_request(spec, env, run))["ModelPackageArn"]
    record = client.describe_model_package(ModelPackageName=arn)
    assert set(record) <= set(output.members), set(record) - set(output.members)
    assert record["ModelApprovalStatus"] == "PendingManualApproval"
    assert record["ModelMetrics"] == _request(spec, env, run)["ModelMetrics"]


def test_approval_changes_in_the_registry_and_a_retry_registers_once(lake, spec, env, run):
    client = ModelRegistryClient()
    arn = client.create_model_package(**_request(spec, env, run))["ModelPackageArn"]
    assert client.create_model_package(**_request(spec, env, run))["ModelPackageArn"] == arn  # ClientToken: the same package
    client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="checked by the on-call")
    record = client.describe_model_package(ModelPackageName=arn)
    assert (record["ModelApprovalStatus"], record["ApprovalDescription"]) == ("Approved", "checked by the on-call")
    listed = client.list_model_packages(ModelPackageGroupName=spec.slug, ModelApprovalStatus="Approved")["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [arn]
    with pytest.raises(RequestValidationError, match="ModelApprovalStatus"):
        client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Maybe")
    with pytest.raises(ResourceNotFound, match="does not exist"):
        client.describe_model_package(ModelPackageName=arn.rsplit("/", 1)[0] + "/99")


def test_the_local_registry_answers_like_the_model_registry_of_moto(lake, spec, env, run):
    """The same calls through boto3 on moto's Model Registry and through the local client: the same answers where both keep them."""
    import boto3
    from moto import mock_aws

    request = _request(spec, env, run)
    local = ModelRegistryClient()
    with mock_aws():
        aws = boto3.client("sagemaker", region_name="us-east-1")
        aws.create_model_package_group(ModelPackageGroupName=spec.slug)
        answers = []
        for client in (aws, local):
            arn = client.create_model_package(**request)["ModelPackageArn"]
            client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
            described = client.describe_model_package(ModelPackageName=arn)
            listed = client.list_model_packages(ModelPackageGroupName=spec.slug)["ModelPackageSummaryList"]
            answers.append(
                (
                    arn.split(":model-package/", 1)[1],
                    described["ModelPackageVersion"],
                    described["ModelApprovalStatus"],
                    described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
                    [p["ModelPackageVersion"] for p in listed],
                )
            )
    assert answers[0] == answers[1]


def test_the_deployment_reads_the_registry_approval_not_the_evaluation_decision(lake, spec, env, run):
    from gated_ml.stages.deployment import check_deployable

    evaluation = {"decision": "Approved", "version": 3}
    pending = {"approval": "PendingManualApproval", "model_package_arn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/vertebral-column/3"}
    with pytest.raises(SkipDeployment, match=r"PendingManualApproval in the model registry .*model-package/vertebral-column/3"):
        check_deployable(spec, env, run, evaluation, pending)
    check_deployable(spec, env, run, {"decision": "PendingManualApproval", "version": 3}, {**pending, "approval": "Approved"})


def test_the_register_step_reads_the_package_back_as_the_registry_describes_it(lake, spec, env, run):
    from gated_ml.stages.deployment import REGISTER_MODEL_VERSION
    from gated_ml.targets.local import LocalTarget

    chosen = {"model_data": MODEL, "job_name": "vertebral-column-train-20261101-1"}
    result = LocalTarget().run_step(
        REGISTER_MODEL_VERSION, spec, env, run, chosen=chosen, evaluation={"version": 1, "decision": "Approved"}, code={"sourcedir_uri": CODE}
    )
    assert result["approval"] == "Approved" and result["model_package_version"] == 1
    again = LocalTarget().run_step(
        REGISTER_MODEL_VERSION,
        spec,
        env,
        jr.Run(run.logical_date, 2),
        chosen=chosen,
        evaluation={"version": 1, "decision": "Approved"},
        code={"sourcedir_uri": CODE},
    )
    assert again == result  # a retried task: the same package
    later = jr.Run(dt.datetime(2026, 11, 8, tzinfo=dt.UTC), 1)
    other = {"model_data": MODEL.replace("job-1", "job-8"), "job_name": "vertebral-column-train-20261108-1"}
    assert (
        LocalTarget().run_step(
            REGISTER_MODEL_VERSION, spec, env, later, chosen=other, evaluation={"version": 2, "decision": "Approved"}, code={"sourcedir_uri": CODE}
        )["model_package_version"]
        == 2
    )
