"""Every request builder's output is accepted by botocore's service model; broken ones are not."""

import copy
import datetime as dt

import pytest

from gated_ml import job_requests as jr
from gated_ml.validation import RequestValidationError, validate_request

CODE = "s3://gated-ml-lake/vertebral_column/code/abc123/sourcedir.tar.gz"
MODEL = "s3://gated-ml-lake/vertebral_column/models/job/output/model.tar.gz"


@pytest.fixture
def requests(spec, env, run):
    from test_request_fields import every_request

    return every_request(spec, env, run)


def test_every_builder_output_is_valid(requests):
    for (service, operation), req in requests.items():
        assert validate_request(service, operation, req) is req


def test_builders_are_pure(spec, env, run):
    assert jr.tuning_job(spec, env, run, CODE) == jr.tuning_job(spec, env, run, CODE)
    assert jr.training_job(spec, env, run, CODE) != jr.training_job(spec, env, jr.Run(run.logical_date, 2), CODE)


def test_training_request_content(spec, env, run):
    req = jr.training_job(spec, env, run, CODE)
    assert req["TrainingJobName"] == "vertebral-column-train-20261101-1"
    assert req["HyperParameters"]["sagemaker_program"] == "train.py"
    assert req["HyperParameters"]["sagemaker_submit_directory"] == CODE
    assert [c["ChannelName"] for c in req["InputDataConfig"]] == ["train", "validation"]
    assert req["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith("/features/ds=2026-11-01/train/")
    assert {m["Name"] for m in req["AlgorithmSpecification"]["MetricDefinitions"]} >= {spec.tuning.objective_metric}
    assert req["AlgorithmSpecification"]["TrainingImage"].endswith("sagemaker-xgboost:3.2-0")


def test_tuning_request_content(spec, env, run):
    req = jr.tuning_job(spec, env, run, CODE)
    cfg = req["HyperParameterTuningJobConfig"]
    assert len(req["HyperParameterTuningJobName"]) <= 32
    assert cfg["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2}
    eta = next(r for r in cfg["ParameterRanges"]["ContinuousParameterRanges"] if r["Name"] == "eta")
    assert eta["ScalingType"] == "Logarithmic"
    static = req["TrainingJobDefinition"]["StaticHyperParameters"]
    assert "eta" not in static and static["num_round"] == "200"  # tuned values are not also static


@pytest.mark.parametrize(
    "operation, mutate, complaint",
    [
        ("CreateTrainingJob", lambda r: r.update(TrainingJobName="x" * 64), "at most 63"),
        ("CreateTrainingJob", lambda r: r.update(TrainingJobName="has_underscore"), "does not match the pattern"),
        ("CreateTrainingJob", lambda r: r.pop("RoleArn"), "Missing required parameter"),
        ("CreateTrainingJob", lambda r: r["ResourceConfig"].update(InstanceCount="1"), "Invalid type"),
        ("CreateTrainingJob", lambda r: r["ResourceConfig"].update(InstanceType="ml.bogus"), "is not one of"),
        ("CreateTrainingJob", lambda r: r.update(Colour="red"), "Unknown parameter"),
        ("CreateHyperParameterTuningJob", lambda r: r.update(HyperParameterTuningJobName="x" * 33), "at most 32"),
        ("CreateHyperParameterTuningJob", lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Genetic"), "is not one of"),
        ("CreateTransformJob", lambda r: r["TransformInput"].update(SplitType="Paragraph"), "is not one of"),
    ],
)
def test_broken_requests_are_rejected(requests, operation, mutate, complaint):
    req = copy.deepcopy(requests[("sagemaker", operation)])
    mutate(req)
    with pytest.raises(RequestValidationError, match=complaint):
        validate_request("sagemaker", operation, req)


def test_names_follow_logical_date_and_try(spec, env):
    late = jr.Run(dt.datetime(2026, 12, 24, 6, 30, tzinfo=dt.UTC), 3)
    assert jr.training_job(spec, env, late, CODE)["TrainingJobName"] == "vertebral-column-train-20261224t0630-3"
    assert jr.transform_job(spec, env, late, "m")["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"].endswith("ds=2026-12-24/test/")


def test_security_settings_reach_every_request(spec, env, run):
    secure = spec.model_copy(
        update={
            "security": spec.security.model_validate(
                {
                    "kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    "network_isolation": True,
                    "vpc": {"subnets": ["subnet-0abc"], "security_group_ids": ["sg-0abc"]},
                }
            )
        }
    )
    train = jr.training_job(secure, env, run, CODE)
    key = secure.security.kms_key_id
    assert train["OutputDataConfig"]["KmsKeyId"] == key and train["ResourceConfig"]["VolumeKmsKeyId"] == key
    assert train["EnableNetworkIsolation"] is True and train["EnableInterContainerTrafficEncryption"] is True
    assert train["VpcConfig"] == {"Subnets": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]}
    assert jr.tuning_job(secure, env, run, CODE)["TrainingJobDefinition"]["VpcConfig"]["Subnets"] == ["subnet-0abc"]
    assert jr.model(secure, env, run, MODEL, CODE)["EnableNetworkIsolation"] is True
    assert jr.transform_job(secure, env, run, "m")["TransformOutput"]["KmsKeyId"] == key
    assert jr.endpoint_config(secure, run, "m")["KmsKeyId"] == key
