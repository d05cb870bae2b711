"""Which field of each request the `local` target honours, which it only records, and which it refuses.

The local target is worth only what its fidelity is: a request field it would silently
ignore makes a job behave differently here than on AWS. So every field of every request
the pipeline sends has one disposition here, by its path in the request (``[]`` for a list
item; a map such as ``HyperParameters`` is one field):

- ``honoured``: the local runner does with it what AWS does (optionally only for some
  values: another value is refused, e.g. ``TrainingInputMode: Pipe``);
- ``recorded``: kept in the Describe record, with no effect on this machine, for the
  reason given (an instance type sizes AWS hardware; a tag is metadata);
- anything not listed is refused before the job starts, naming the field.

:func:`admit` applies it to a request (the local target calls it for every verb before the
runner starts). ``python -m gated_ml.local.fidelity`` prints the table against botocore's
shapes, every member of each operation's input with the path it takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gated_ml.errors import RequestValidationError


@dataclass(frozen=True)
class Field:
    how: str  # "honoured" | "recorded"
    note: str
    values: tuple | None = None  # honoured only for these values; any other is refused


def honoured(note: str, values: tuple | None = None) -> Field:
    return Field("honoured", note, values)


def recorded(note: str) -> Field:
    return Field("recorded", note)


TAGS = recorded("metadata: kept on the record, as ListTags would show it")
HARDWARE = recorded("sizes AWS hardware; the job runs on this machine's cores")
ROLE = recorded("the local runners act with this machine's permissions (the IAM templates in include/iam/ grant the role on AWS)")
KMS = recorded("the lake is a local folder without encryption; on AWS the key encrypts outputs and volumes")
VPC = recorded("this machine has no VPC; on AWS the job's ENIs go into these subnets")
IMAGE = recorded("the local container is this project's Python with the image's xgboost version (XGBOOST_FRAMEWORK_VERSION)")

_TRAINING_COMMON = {
    "HyperParameters": honoured("hyperparameters.json and the entry point's command line, rendered by the SageMaker training toolkit"),
    "AlgorithmSpecification.TrainingImage": IMAGE,
    "AlgorithmSpecification.TrainingInputMode": honoured("channels copied into input/data/<channel>/", values=("File",)),
    "AlgorithmSpecification.MetricDefinitions": honoured("final metrics found in the job's log by these regexes"),
    "RoleArn": ROLE,
    "InputDataConfig[].ChannelName": honoured("the folder input/data/<channel>/ and SM_CHANNEL_<CHANNEL>"),
    "InputDataConfig[].DataSource.S3DataSource.S3DataType": honoured("every object under the prefix", values=("S3Prefix",)),
    "InputDataConfig[].DataSource.S3DataSource.S3Uri": honoured("read from the lake"),
    "InputDataConfig[].DataSource.S3DataSource.S3DataDistributionType": honoured("one instance gets every object", values=("FullyReplicated",)),
    "InputDataConfig[].ContentType": honoured("SM_CHANNEL config content type (inputdataconfig.json)"),
    "InputDataConfig[].InputMode": honoured("channels copied into input/data/<channel>/", values=("File",)),
    "InputDataConfig[].CompressionType": honoured("files copied as they are", values=("None",)),
    "OutputDataConfig.S3OutputPath": honoured("model.tar.gz under <S3OutputPath>/<job>/output/"),
    "OutputDataConfig.KmsKeyId": KMS,
    "ResourceConfig.InstanceType": HARDWARE,
    "ResourceConfig.InstanceCount": honoured("one process: the entry point runs once", values=(1,)),
    "ResourceConfig.VolumeSizeInGB": HARDWARE,
    "ResourceConfig.VolumeKmsKeyId": KMS,
    "StoppingCondition.MaxRuntimeInSeconds": honoured("the job is stopped at the limit"),
    "EnableNetworkIsolation": honoured("the container cannot download an s3:// submit directory: the code must come as an input channel"),
    "EnableInterContainerTrafficEncryption": recorded("one container: there is no traffic between containers"),
    "VpcConfig": VPC,
}

FIELDS: dict[tuple[str, str], dict[str, Field]] = {
    ("glue", "CreateJob"): {
        "Name": honoured("the job's record and its runs"),
        "Role": ROLE,
        "Command.Name": honoured("a Spark ETL script", values=("glueetl",)),
        "Command.ScriptLocation": honoured("the script run by spark-submit on local Spark"),
        "Command.PythonVersion": honoured("this project's Python 3", values=("3",)),
        "GlueVersion": recorded("local Spark is pyspark 3.5, Glue 5.0's Spark version"),
        "WorkerType": HARDWARE,
        "NumberOfWorkers": HARDWARE,
        "Timeout": recorded("not enforced on local Spark"),
        "MaxRetries": honoured("a failed run is not retried", values=(0,)),
        "ExecutionProperty.MaxConcurrentRuns": recorded("runs beyond it queue in Airflow's ETL pool, sized from the same spec field"),
        "DefaultArguments": honoured("passed to the script with the run's arguments; --extra-py-files on PYTHONPATH"),
        "Tags": TAGS,
    },
    ("glue", "StartJobRun"): {
        "JobName": honoured("the job whose script runs"),
        "Arguments": honoured("the script's arguments, over the job's DefaultArguments"),
    },
    ("glue", "CreateTable"): {
        "DatabaseName": honoured("the catalog record's database"),
        "TableInput": honoured("the catalog record, answered as GetTable"),
    },
    ("glue", "CreatePartition"): {
        "DatabaseName": honoured("the catalog record's database"),
        "TableName": honoured("the table the partition belongs to"),
        "PartitionInput": honoured("the catalog record, answered as GetPartition"),
    },
    ("sagemaker", "CreateTrainingJob"): {
        "TrainingJobName": honoured("the job's folder, record and output prefix"),
        **_TRAINING_COMMON,
        "Tags": TAGS,
    },
    ("sagemaker", "CreateHyperParameterTuningJob"): {
        "HyperParameterTuningJobName": honoured("the tuning record; training jobs named <tuning job>-NNN-<id>"),
        "HyperParameterTuningJobConfig.Strategy": honoured(
            "Random: Optuna's random sampler; Bayesian: Optuna's TPE sampler (AWS's Bayesian search is a Gaussian process)", values=("Bayesian", "Random")
        ),
        "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective": honoured("the metric each training job's log reports, maximised or minimised"),
        "HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs": honoured("the number of trials"),
        "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs": honoured("trials run this many at a time"),
        "HyperParameterTuningJobConfig.ParameterRanges": honoured("each range sampled with its scaling"),
        "HyperParameterTuningJobConfig.TrainingJobEarlyStoppingType": honoured("every trial runs to its end", values=("Off",)),
        "HyperParameterTuningJobConfig.RandomSeed": honoured("the sampler's seed"),
        "TrainingJobDefinition.StaticHyperParameters": honoured("every trial's hyperparameters, under the tuned ones"),
        **{f"TrainingJobDefinition.{path}": field for path, field in _TRAINING_COMMON.items() if path != "HyperParameters"},
        "Tags": TAGS,
    },
    ("sagemaker", "CreateModel"): {
        "ModelName": honoured("the model's record"),
        "PrimaryContainer.Image": IMAGE,
        "PrimaryContainer.ModelDataUrl": honoured("unpacked into the model server's /opt/ml/model"),
        "PrimaryContainer.Environment": honoured("the model server's environment (SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY)"),
        "ExecutionRoleArn": ROLE,
        "EnableNetworkIsolation": recorded("the local model server can reach the lake either way"),
        "VpcConfig": VPC,
        "Tags": TAGS,
    },
    ("sagemaker", "CreateTransformJob"): {
        "TransformJobName": honoured("the job's record"),
        "ModelName": honoured("the model served for the job"),
        "BatchStrategy": honoured("records per request", values=("MultiRecord", "SingleRecord")),
        "MaxPayloadInMB": honoured("the largest request body; a record above it fails the job (limits checked by local/transform_request.py)"),
        "MaxConcurrentTransforms": honoured("its limit with MaxPayloadInMB is checked; requests go one at a time (same output, slower)"),
        "ModelClientConfig": honoured("time-out and retries of each invocation"),
        "Environment": honoured("the model container's environment, over the model's"),
        "TransformInput.DataSource.S3DataSource.S3DataType": honoured("every object under the prefix", values=("S3Prefix",)),
        "TransformInput.DataSource.S3DataSource.S3Uri": honoured("read from the lake"),
        "TransformInput.ContentType": honoured("the Content-Type of each request, answered by the container's input_fn"),
        "TransformInput.SplitType": honoured("records are lines, or each object is one request", values=("Line", "None")),
        "TransformInput.CompressionType": honoured("gzip objects decompressed before splitting", values=("None", "Gzip")),
        "TransformOutput.S3OutputPath": honoured("<input key>.out under it"),
        "TransformOutput.Accept": honoured("the Accept of each request, answered by the container's output_fn"),
        "TransformOutput.AssembleWith": honoured("a newline after each answer, or answers concatenated", values=("Line", "None")),
        "TransformOutput.KmsKeyId": KMS,
        "TransformResources.InstanceType": HARDWARE,
        "TransformResources.InstanceCount": honoured("one model server", values=(1,)),
        "TransformResources.VolumeKmsKeyId": KMS,
        "DataProcessing.InputFilter": honoured("JSONPath over the CSV record before the model"),
        "DataProcessing.JoinSource": honoured("the input record joined with the answer", values=("Input", "None")),
        "DataProcessing.OutputFilter": honoured("JSONPath over the joined record"),
        "Tags": TAGS,
    },
    ("sagemaker", "CreateEndpointConfig"): {
        "EndpointConfigName": honoured("the config's record"),
        "ProductionVariants[].VariantName": honoured("the variant answering InvokeEndpoint"),
        "ProductionVariants[].ModelName": honoured("the model the variant serves"),
        "ProductionVariants[].InstanceType": HARDWARE,
        "ProductionVariants[].InitialInstanceCount": recorded("one model server process serves every instance's share"),
        "KmsKeyId": KMS,
        "Tags": TAGS,
    },
    ("sagemaker", "CreateEndpoint"): {
        "EndpointName": honoured("the router's name and record"),
        "EndpointConfigName": honoured("the config it serves; a new one on an existing endpoint is an update"),
        "Tags": TAGS,
    },
    ("sagemaker", "CreateModelPackage"): {
        "ModelPackageGroupName": honoured("the group's numbered versions"),
        "ModelPackageDescription": honoured("the package record"),
        "ClientToken": honoured("a request with a token already used answers with the package it made"),
        "InferenceSpecification": honoured("the package record: container, model data, inference environment, content types"),
        "ModelApprovalStatus": honoured("the approval the deployment reads"),
        "ModelMetrics": honoured("the package record: the metrics report's location"),
        "MetadataProperties": honoured("the package record: commit and the job that made the model"),
        "CustomerMetadataProperties": honoured("the package record: ds, registry version, window"),
        "Tags": TAGS,
    },
}

# the verbs of the local target and the operations their requests hold
VERB_OPERATIONS = {
    "run_glue_job": {"CreateJob": ("glue", "CreateJob"), "StartJobRun": ("glue", "StartJobRun")},
    "register_partition": {"CreateTable": ("glue", "CreateTable"), "CreatePartition": ("glue", "CreatePartition")},
    "train": {None: ("sagemaker", "CreateTrainingJob")},
    "tune": {None: ("sagemaker", "CreateHyperParameterTuningJob")},
    "create_model": {None: ("sagemaker", "CreateModel")},
    "transform": {None: ("sagemaker", "CreateTransformJob")},
    "deploy_endpoint": {"EndpointConfig": ("sagemaker", "CreateEndpointConfig"), "Endpoint": ("sagemaker", "CreateEndpoint")},
    "register_model_version": {None: ("sagemaker", "CreateModelPackage")},
}


def refusals(operation: tuple[str, str], request: dict) -> list[str]:
    """Every field of ``request`` the local target would not honour, each with the reason."""
    rules = FIELDS.get(operation)
    if rules is None:
        return [f"{operation[1]} is not an operation the local target runs"]
    found: list[str] = []

    def walk(value, path: str) -> None:
        rule = rules.get(path)
        if rule is not None:
            if rule.values is not None and value not in rule.values:
                found.append(f"{path}={value!r} (the local target honours {', '.join(map(repr, rule.values))} only)")
        elif isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list) and value:
            for item in value:
                walk(item, f"{path}[]")
        else:
            found.append(f"{path} (not honoured by the local target)")

    walk(request, "")
    return sorted(set(found))


def admit(verb: str, request: dict) -> None:
    """Refuse, before anything runs, a request with a field the local target would not honour."""
    for part, operation in VERB_OPERATIONS[verb].items():
        problems = refusals(operation, request if part is None else request[part])
        if problems:
            raise RequestValidationError(
                f"{operation[1]}: the local target would run this differently than AWS, so it refuses: {'; '.join(problems)}. "
                "Remove the field(s) from the spec or run on the aws target."
            )


# --- the table against botocore's shapes ----------------------------------------------------
def member_paths(shape, path: str = "", depth: int = 0) -> list[str]:
    """Every member path of a botocore input shape (structures and lists descended; maps and scalars are leaves)."""
    if shape.type_name == "structure" and depth < 8:
        return [p for name, member in shape.members.items() for p in member_paths(member, f"{path}.{name}" if path else name, depth + 1)]
    if shape.type_name == "list" and depth < 8 and shape.member.type_name == "structure":
        return member_paths(shape.member, f"{path}[]", depth + 1)
    return [path]


def disposition(operation: tuple[str, str], path: str) -> tuple[str, str]:
    """How the local target treats the member at ``path``: the rule covering it, or refused."""
    rules = FIELDS[operation]
    covering = [p for p in rules if path == p or path.startswith((p + ".", p + "[]"))]
    if not covering:
        return "refused", "not honoured by the local target"
    rule = rules[max(covering, key=len)]
    note = rule.note + (f" (values {', '.join(map(repr, rule.values))}; others refused)" if rule.values else "")
    return rule.how, note


def table() -> list[tuple[str, str, str, str, str]]:
    """(service, operation, member path, disposition, note) for every member of every operation."""
    import botocore.session

    session = botocore.session.get_session()
    rows = []
    for service, operation in FIELDS:
        shape = session.get_service_model(service).operation_model(operation).input_shape
        for path in member_paths(shape):
            rows.append((service, operation, path, *disposition((service, operation), path)))
    return rows


if __name__ == "__main__":
    for service, operation, path, how, note in table():
        print(f"{service:<10}{operation:<32}{path:<90}{how:<10}{note}")
