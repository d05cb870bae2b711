"""Network isolation ships the training code as the ``code`` input channel, as the SageMaker SDK does."""

import pytest

from gated_ml import job_requests as jr

CODE = "s3://gated-ml-lake/vertebral_column/code/abc/sourcedir.tar.gz"


@pytest.fixture
def isolated(spec):
    return spec.model_copy(update={"security": spec.security.model_copy(update={"network_isolation": True})})


def _channels(request):
    return {c["ChannelName"]: c for c in request["InputDataConfig"]}


def test_an_isolated_training_job_gets_its_code_as_a_channel_and_the_submit_directory_points_at_it(isolated, env, run):
    train = jr.training_job(isolated, env, run, CODE)
    assert train["EnableNetworkIsolation"] is True
    code = _channels(train)["code"]
    assert code["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix", "S3Uri": CODE, "S3DataDistributionType": "FullyReplicated"}
    assert train["HyperParameters"]["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert set(_channels(train)) == {"train", "validation", "code"}


def test_an_isolated_tuning_job_does_the_same_for_every_training_job(isolated, env, run):
    tune = jr.tuning_job(isolated, env, run, CODE)
    definition = tune["TrainingJobDefinition"]
    assert _channels(definition)["code"]["DataSource"]["S3DataSource"]["S3Uri"] == CODE
    assert definition["StaticHyperParameters"]["sagemaker_submit_directory"] == jr.CODE_CHANNEL_SOURCEDIR


def test_without_isolation_the_code_is_fetched_from_s3_and_no_channel_is_added(spec, env, run):
    train = jr.training_job(spec, env, run, CODE)
    assert train["HyperParameters"]["sagemaker_submit_directory"] == CODE and "code" not in _channels(train)


def test_the_channel_and_its_path_are_the_sagemaker_sdks():
    from sagemaker.core.modules.constants import SM_CODE, SM_CODE_CONTAINER_PATH

    assert jr.CODE_CHANNEL == SM_CODE
    assert jr.CODE_CHANNEL_SOURCEDIR == f"{SM_CODE_CONTAINER_PATH}/sourcedir.tar.gz"
