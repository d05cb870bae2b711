"""Every field a spec can set reaches its request; every field of every request takes a known path locally.

The walk over botocore's shapes (``gated_ml.local.fidelity.table``) gives each member of each
operation the pipeline sends a disposition: honoured, recorded (no effect here, for a stated
reason) or refused before the job starts. These tests hold the three ends together: the
spec, the requests the builders send, and what the local target does with them.
"""

from __future__ import annotations

import copy

import pytest

from gated_ml import job_requests as jr
from gated_ml.errors import RequestValidationError
from gated_ml.local import fidelity
from gated_ml.spec import PipelineSpec, load_pipeline

CODE = "s3://gated-ml-lake/vertebral_column/code/abc123/sourcedir.tar.gz"
MODEL = "s3://gated-ml-lake/vertebral_column/models/job/output/model.tar.gz"
SCRIPT = "s3://gated-ml-lake/vertebral_column/code/abc123/etl.py"


def every_request(spec, env, run) -> dict[tuple[str, str], dict]:
    """The requests one run of the DAG sends, built by the same builders the stages call."""
    return {
        ("glue", "CreateJob"): jr.glue_create_job(spec, env, SCRIPT, [SCRIPT.replace("etl.py", "raw_formats.py")]),
        ("glue", "StartJobRun"): jr.glue_job_run(spec, env, run),
        ("glue", "CreateTable"): jr.catalog_table(spec, env),
        ("glue", "CreatePartition"): jr.catalog_partition(spec, env, run),
        ("sagemaker", "CreateTrainingJob"): jr.training_job(spec, env, run, CODE),
        ("sagemaker", "CreateHyperParameterTuningJob"): jr.tuning_job(spec, env, run, CODE),
        ("sagemaker", "CreateModel"): jr.model(spec, env, run, MODEL, CODE),
        ("sagemaker", "CreateTransformJob"): jr.transform_job(spec, env, run, "m"),
        ("sagemaker", "CreateEndpointConfig"): jr.endpoint_config(spec, run, "m"),
        ("sagemaker", "CreateEndpoint"): jr.endpoint(spec, "epc"),
        ("sagemaker", "CreateModelPackage"): jr.model_package(spec, env, run, MODEL, CODE, 1, "Approved"),
    }


def with_changes(spec: PipelineSpec, changes: dict) -> PipelineSpec:
    data = spec.model_dump(mode="json")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        node[leaf] = value
    return PipelineSpec.model_validate(data)


SECURE = {
    "security.kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "security.network_isolation": True,
    "security.encrypt_inter_container_traffic": False,
    "security.vpc": {"subnets": ["subnet-0abc"], "security_group_ids": ["sg-0abc"]},
}


@pytest.mark.parametrize("name", ["vertebral_column", "wine_quality", "car_evaluation"])
@pytest.mark.parametrize("secure", [False, True], ids=["plain", "kms+vpc+isolation"])
def test_every_field_the_dag_sends_has_a_local_path(name, secure, env, run):
    spec = load_pipeline(name)
    if secure:
        spec = with_changes(spec, SECURE)
    for operation, request in every_request(spec, env, run).items():
        assert fidelity.refusals(operation, request) == [], operation


def test_every_rule_names_a_real_member_of_the_botocore_shape():
    rows = fidelity.table()
    paths = {(service, op): {path for s, o, path, *_ in rows if (s, o) == (service, op)} for service, op in fidelity.FIELDS}
    for operation, rules in fidelity.FIELDS.items():
        for rule in rules:
            assert any(p == rule or p.startswith((rule + ".", rule + "[]")) for p in paths[operation]), (operation, rule)


def test_the_table_covers_every_member_and_refuses_what_it_does_not_list():
    rows = fidelity.table()
    by_path = {(op, path): how for _, op, path, how, _ in rows}
    assert set(by_path.values()) == {"honoured", "recorded", "refused"}
    assert by_path[("CreateTrainingJob", "StoppingCondition.MaxRuntimeInSeconds")] == "honoured"
    assert by_path[("CreateTrainingJob", "CheckpointConfig.S3Uri")] == "refused"
    assert by_path[("CreateTrainingJob", "ResourceConfig.InstanceType")] == "recorded"
    assert by_path[("CreateTransformJob", "DataCaptureConfig.DestinationS3Uri")] == "refused"


@pytest.mark.parametrize(
    ("verb", "change", "named"),
    [
        ("train", lambda r: r.update(CheckpointConfig={"S3Uri": "s3://b/ckpt/"}), "CheckpointConfig.S3Uri"),
        ("train", lambda r: r["AlgorithmSpecification"].update(TrainingInputMode="Pipe"), "TrainingInputMode='Pipe'"),
        ("train", lambda r: r["ResourceConfig"].update(InstanceCount=2), "ResourceConfig.InstanceCount=2"),
        ("tune", lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "Strategy='Hyperband'"),
        ("tune", lambda r: r["HyperParameterTuningJobConfig"].update(TrainingJobEarlyStoppingType="Auto"), "TrainingJobEarlyStoppingType='Auto'"),
        ("transform", lambda r: r.update(DataCaptureConfig={"DestinationS3Uri": "s3://b/capture/"}), "DataCaptureConfig.DestinationS3Uri"),
        ("transform", lambda r: r["TransformInput"].update(SplitType="RecordIO"), "SplitType='RecordIO'"),
        ("create_model", lambda r: r.update(Containers=[{"Image": "i"}]), "Containers[]"),
    ],
)
def test_a_field_the_local_target_would_not_honour_is_refused_naming_it(verb, change, named, spec, env, run):
    requests = {
        "train": jr.training_job(spec, env, run, CODE),
        "tune": jr.tuning_job(spec, env, run, CODE),
        "transform": jr.transform_job(spec, env, run, "m"),
        "create_model": jr.model(spec, env, run, MODEL, CODE),
    }
    request = copy.deepcopy(requests[verb])
    fidelity.admit(verb, request)  # as built: admitted
    change(request)
    with pytest.raises(RequestValidationError, match="would run this differently than AWS") as refused:
        fidelity.admit(verb, request)
    assert named in str(refused.value)
    assert "aws target" in str(refused.value)


def test_the_local_target_refuses_before_the_job_starts(spec, env, run, lake):
    from gated_ml.steps import Step
    from gated_ml.targets.local import LocalTarget

    def request(spec, env, run):
        return {**jr.training_job(spec, env, run, CODE), "CheckpointConfig": {"S3Uri": "s3://gated-ml-lake/ckpt/"}}

    with pytest.raises(RequestValidationError, match="CheckpointConfig"):
        LocalTarget().run_step(Step("train", request, lambda *a, **k: a[4]), spec, env, run)
    assert not (lake / "_control" / "training-jobs").exists()  # no job record, no job folder


def _value_at(request, path):
    """Every value at a dotted path (``[]`` walks a list)."""
    values = [request]
    for part in path.split("."):
        name, many = (part[:-2], True) if part.endswith("[]") else (part, False)
        values = [v[name] for v in values if isinstance(v, dict) and name in v]
        if many:
            values = [item for v in values for item in v]
    return values


# spec field -> (value to set, operation, request path where it must arrive, value expected there)
SPEC_TO_REQUEST = [
    ("training.instance_type", "ml.c5.xlarge", ("sagemaker", "CreateTrainingJob"), "ResourceConfig.InstanceType", "ml.c5.xlarge"),
    ("training.instance_type", "ml.c5.xlarge", ("sagemaker", "CreateTransformJob"), "TransformResources.InstanceType", "ml.c5.xlarge"),
    ("training.max_runtime_seconds", 1234, ("sagemaker", "CreateTrainingJob"), "StoppingCondition.MaxRuntimeInSeconds", 1234),
    ("training.max_runtime_seconds", 1234, ("sagemaker", "CreateHyperParameterTuningJob"), "TrainingJobDefinition.StoppingCondition.MaxRuntimeInSeconds", 1234),
    ("training.hyperparameters", {"num_round": 77}, ("sagemaker", "CreateTrainingJob"), "HyperParameters.num_round", "77"),
    ("tuning.strategy", "Random", ("sagemaker", "CreateHyperParameterTuningJob"), "HyperParameterTuningJobConfig.Strategy", "Random"),
    ("tuning.max_jobs", 7, ("sagemaker", "CreateHyperParameterTuningJob"), "HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs", 7),
    ("tuning.max_parallel", 3, ("sagemaker", "CreateHyperParameterTuningJob"), "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs", 3),
    ("split.seed", 9, ("sagemaker", "CreateHyperParameterTuningJob"), "HyperParameterTuningJobConfig.RandomSeed", 9),
    ("endpoint.instance_type", "ml.c5.large", ("sagemaker", "CreateEndpointConfig"), "ProductionVariants[].InstanceType", "ml.c5.large"),
    ("endpoint.instance_count", 2, ("sagemaker", "CreateEndpointConfig"), "ProductionVariants[].InitialInstanceCount", 2),
    ("max_active_runs", 3, ("glue", "CreateJob"), "ExecutionProperty.MaxConcurrentRuns", 3),
    ("security.network_isolation", True, ("sagemaker", "CreateTrainingJob"), "EnableNetworkIsolation", True),
    ("security.network_isolation", True, ("sagemaker", "CreateModel"), "EnableNetworkIsolation", True),
    ("security.encrypt_inter_container_traffic", False, ("sagemaker", "CreateTrainingJob"), "EnableInterContainerTrafficEncryption", False),
    ("security.kms_key_id", SECURE["security.kms_key_id"], ("sagemaker", "CreateTrainingJob"), "OutputDataConfig.KmsKeyId", SECURE["security.kms_key_id"]),
    ("security.kms_key_id", SECURE["security.kms_key_id"], ("sagemaker", "CreateTransformJob"), "TransformOutput.KmsKeyId", SECURE["security.kms_key_id"]),
    ("security.kms_key_id", SECURE["security.kms_key_id"], ("sagemaker", "CreateEndpointConfig"), "KmsKeyId", SECURE["security.kms_key_id"]),
    ("security.vpc", SECURE["security.vpc"], ("sagemaker", "CreateTrainingJob"), "VpcConfig.Subnets[]", "subnet-0abc"),
    ("security.vpc", SECURE["security.vpc"], ("sagemaker", "CreateModel"), "VpcConfig.SecurityGroupIds[]", "sg-0abc"),
]


@pytest.mark.parametrize(("field", "value", "operation", "path", "expected"), SPEC_TO_REQUEST, ids=[f"{r[0]}->{r[2][1]}.{r[3]}" for r in SPEC_TO_REQUEST])
def test_a_spec_field_reaches_its_request_and_takes_a_local_path(field, value, operation, path, expected, spec, env, run):
    before = every_request(spec, env, run)[operation]
    request = every_request(with_changes(spec, {field: value}), env, run)[operation]
    assert expected in _value_at(request, path), (path, request)
    assert expected not in _value_at(before, path)  # the spec's change is what put it there
    assert fidelity.refusals(operation, request) == []
    how, _ = fidelity.disposition(operation, path)
    assert how in ("honoured", "recorded")


@pytest.mark.parametrize("column", ["true", "false", "null", "class"])
def test_string_hyperparameters_reach_the_script_as_strings_after_the_toolkits_decoding(column, spec, env, run, tmp_path, monkeypatch):
    """The toolkit JSON-decodes every hyperparameter (``environment.read_hyperparameters``): strings go JSON-encoded, as the SDK sends them."""
    import json

    from sagemaker_training import environment

    data = spec.model_dump()
    data["columns"] = [{**c, "name": column} if c["name"] == spec.target.column else c for c in data["columns"]]
    renamed = spec.model_validate({**data, "target": {**data["target"], "column": column}})
    hps = jr.training_job(renamed, env, run, CODE)["HyperParameters"]
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps(hps))
    monkeypatch.setattr(environment, "hyperparameters_file_dir", str(path))
    decoded = environment.read_hyperparameters()
    assert decoded["target"] == column and decoded["problem_type"] == spec.problem_type
