"""Pure builders of the AWS API requests every stage sends, from a spec and a run.

Nothing here calls AWS, reads the clock or touches disk: the same inputs always give the
same dicts, which both targets execute (``aws`` through the Amazon provider operators,
``local`` on this machine). Every builder validates its output against botocore's
service model, so a request that AWS would reject fails here first.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gated_ml.errors import RequestValidationError
from gated_ml.lake import Locations
from gated_ml.metric_names import training_metrics
from gated_ml.naming import MAX_TUNING_LEN, ds_of, job_name
from gated_ml.raw_formats import Column, RawFormat
from gated_ml.spec import PipelineSpec
from gated_ml.validation import validate_request

GLUE_VERSION = "5.0"
XGBOOST_FRAMEWORK_VERSION = "3.2-0"
TRAIN_PROGRAM = "train.py"
INFERENCE_PROGRAM = "inference.py"
VARIANT = "AllTraffic"
# With EnableNetworkIsolation the training container cannot reach S3, so the code travels as an
# input channel and the submit directory names where SageMaker puts it, as the SageMaker SDK's
# Framework estimator does (code_channel_name, CONTAINER_CODE_CHANNEL_SOURCEDIR_PATH).
CODE_CHANNEL = "code"
CODE_CHANNEL_SOURCEDIR = f"/opt/ml/input/data/{CODE_CHANNEL}/sourcedir.tar.gz"
_FLOAT = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


@dataclass(frozen=True)
class Run:
    """The run a request belongs to: its logical date, the task's try number and the run's params (trigger form or ``conf``).

    ``params`` are as Airflow gives them to the task; stages see them through
    :func:`gated_ml.run_params.effective_spec` (empty: the spec's own run).
    """

    logical_date: dt.datetime
    try_number: int
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def ds(self) -> str:
        return ds_of(self.logical_date)

    @classmethod
    def from_context(cls, context) -> Run:
        """The run of an Airflow task; manual runs without a logical date use ``run_after``."""
        logical = context.get("logical_date") or context["dag_run"].run_after
        return cls(logical_date=logical, try_number=context["ti"].try_number, params=dict(context.get("params") or {}))

    def name(self, spec: PipelineSpec, stage: str, max_len: int = 63) -> str:
        return job_name(spec.slug, stage, self.logical_date, self.try_number, max_len)


@dataclass(frozen=True)
class Environment:
    """Where a target runs: the account-specific values, never hard-coded in specs."""

    bucket: str
    role_arn: str
    image_uri: str
    glue_role_arn: str


def locations(spec: PipelineSpec, env: Environment) -> Locations:
    return Locations(bucket=env.bucket, pipeline=spec.name)


def raw_format(spec: PipelineSpec) -> RawFormat:
    """The spec's raw format, as both the landing gate's reader and the Glue script read it."""
    src = spec.source
    return RawFormat(src.format, src.delimiter, src.header, tuple(Column(c.name, c.type) for c in spec.columns))


def raw_file_name(spec: PipelineSpec) -> str:
    return spec.source.path.rsplit("/", 1)[-1]


def _tags(spec: PipelineSpec, run: Run | None = None) -> list[dict]:
    tags = [{"Key": "pipeline", "Value": spec.name}]
    if run is not None:
        tags.append({"Key": "ds", "Value": run.ds})
    return tags


# --- Glue ---------------------------------------------------------------------------
def glue_job_name(spec: PipelineSpec) -> str:
    return f"{spec.slug}-etl"


def glue_create_job(spec: PipelineSpec, env: Environment, script_uri: str, extra_py_files: Sequence[str] = ()) -> dict:
    """``glue.CreateJob``: the ETL job definition (Glue 5.0: Spark 3.5, Python 3.11).

    ``extra_py_files``: S3 URIs of Python modules the script imports (``raw_formats.py``).
    """
    extra = {"--extra-py-files": ",".join(extra_py_files)} if extra_py_files else {}
    req = {
        "Name": glue_job_name(spec),
        "Role": env.glue_role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": script_uri, "PythonVersion": "3"},
        "GlueVersion": GLUE_VERSION,
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        "Timeout": 60,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": spec.max_active_runs},  # runs beyond it queue in Airflow's ETL pool
        "DefaultArguments": {"--job-language": "python", "--enable-metrics": "true", **extra},
        "Tags": {"pipeline": spec.name},
    }
    return validate_request("glue", "CreateJob", req)


def glue_job_run(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """``glue.StartJobRun``: ETL of the landed batch of ``run.ds`` into the curated zone."""
    loc = locations(spec, env)
    req = {
        "JobName": glue_job_name(spec),
        "Arguments": {"--source_uri": loc.landing(run.ds) + raw_file_name(spec), "--output_uri": loc.curated(run.ds), **raw_format(spec).job_arguments()},
    }
    return validate_request("glue", "StartJobRun", req)


GLUE_DATABASE = "gated_ml"
_HIVE_TYPES = {"double": "double", "integer": "bigint", "string": "string"}
_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def _columns(spec: PipelineSpec) -> list[dict]:
    return [{"Name": c.name, "Type": _HIVE_TYPES[c.type]} for c in spec.columns]


def catalog_table(spec: PipelineSpec, env: Environment) -> dict:
    """``glue.CreateTable``: the curated zone as a Glue Data Catalog table partitioned by ``ds``."""
    loc = locations(spec, env)
    req = {
        "DatabaseName": GLUE_DATABASE,
        "TableInput": {
            "Name": spec.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet"},
            "PartitionKeys": [{"Name": "ds", "Type": "string"}],
            "StorageDescriptor": {"Columns": _columns(spec), "Location": loc.curated("x").rsplit("/ds=", 1)[0] + "/", **_PARQUET},
        },
    }
    return validate_request("glue", "CreateTable", req)


def catalog_partition(spec: PipelineSpec, env: Environment, run: Run) -> dict:
    """``glue.CreatePartition``: this run's curated partition."""
    req = {
        "DatabaseName": GLUE_DATABASE,
        "TableName": spec.name,
        "PartitionInput": {"Values": [run.ds], "StorageDescriptor": {"Columns": _columns(spec), "Location": locations(spec, env).curated(run.ds), **_PARQUET}},
    }
    return validate_request("glue", "CreatePartition", req)


# --- training and tuning ------------------------------------------------------------
def metric_definitions(spec: PipelineSpec) -> list[dict]:
    """Regexes that find the final metrics in the training log (the entry point prints ``name=value``)."""
    return [{"Name": n, "Regex": f"{n}={_FLOAT}"} for n in training_metrics(spec.problem_type)]


def final_metric(describe: dict, name: str) -> float | None:
    """A metric that ``metric_definitions`` found, read back from ``DescribeTrainingJob.FinalMetricDataList``."""
    return next((m["Value"] for m in describe.get("FinalMetricDataList", []) if m["MetricName"] == name), None)


def hyperparameter_value(value: int | float | str) -> str:
    """A hyperparameter as the SDK sends it: numbers as their text, strings JSON-encoded (the toolkit decodes both)."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def static_hyperparameters(spec: PipelineSpec, code_uri: str) -> dict[str, str]:
    """Hyperparameters every training job gets: the script-mode contract plus the data schema."""
    hp = {
        "sagemaker_program": TRAIN_PROGRAM,
        "sagemaker_submit_directory": CODE_CHANNEL_SOURCEDIR if spec.security.network_isolation else code_uri,
        # strings JSON-encoded, as the SageMaker SDK sends them: the toolkit JSON-decodes every value, so a column
        # named `true` or `1e3` arrives as that string, not as a bool or a number
        "problem_type": json.dumps(spec.problem_type),
        "target": json.dumps(spec.target.column),
        "categorical": json.dumps({c.name: list(c.categories or ()) for c in spec.feature_columns if c.type == "string"}),
    }
    if spec.is_classification:
        hp["label_classes"] = json.dumps(spec.label_classes)
    return hp


def _code_channel(code_uri: str) -> dict:
    """The code as an input channel (network isolation): the SDK's channel for an S3 URI, FullyReplicated, no content type."""
    return {
        "ChannelName": CODE_CHANNEL,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": code_uri, "S3DataDistributionType": "FullyReplicated"}},
    }


def _channels(spec: PipelineSpec, env: Environment, run: Run, code_uri: str) -> list[dict]:
    loc = locations(spec, env)
    code = [_code_channel(code_uri)] if spec.security.network_isolation else []
    return [
        {
            "ChannelName": split,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": loc.features(run.ds, split),
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
            "InputMode": "File",
        }
        for split in ("train", "validation")
    ] + code


def _security(spec: PipelineSpec, req: dict) -> dict:
    """Add the spec's security settings to a training-job shaped request."""
    sec = spec.security
    if sec.kms_key_id:
        req["OutputDataConfig"]["KmsKeyId"] = sec.kms_key_id
        req["ResourceConfig"]["VolumeKmsKeyId"] = sec.kms_key_id
    req["EnableNetworkIsolation"] = sec.network_isolation
    req["EnableInterContainerTrafficEncryption"] = sec.encrypt_inter_container_traffic
    if sec.vpc:
        req["VpcConfig"] = {"Subnets": list(sec.vpc.subnets), "SecurityGroupIds": list(sec.vpc.security_group_ids)}
    return req


def _training_common(spec: PipelineSpec, env: Environment, run: Run, code_uri: str) -> dict:
    return _security(
        spec,
        {
            "AlgorithmSpecification": {
                "TrainingImage": env.image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(spec),
            },
            "RoleArn": env.role_arn,
            "InputDataConfig": _channels(spec, env, run, code_uri),
            "OutputDataConfig": {"S3OutputPath": locations(spec, env).models()},
            "ResourceConfig": {"InstanceType": spec.training.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": spec.training.max_runtime_seconds},
        },
    )


def training_job(spec: PipelineSpec, env: Environment, run: Run, code_uri: str) -> dict:
    """``sagemaker.CreateTrainingJob`` with the spec's default hyperparameters."""
    hp = static_hyperparameters(spec, code_uri)
    hp.update({k: hyperparameter_value(v) for k, v in spec.training.hyperparameters.items()})
    req = {"TrainingJobName": run.name(spec, "train"), "HyperParameters": hp, **_training_common(spec, env, run, code_uri)}
    req["Tags"] = _tags(spec, run)
    return validate_request("sagemaker", "CreateTrainingJob", req)


def _parameter_ranges(spec: PipelineSpec) -> dict:
    ranges: dict[str, list] = {"IntegerParameterRanges": [], "ContinuousParameterRanges": [], "CategoricalParameterRanges": []}
    for name, r in sorted(spec.tuning.ranges.items()):
        if r.type == "categorical":
            ranges["CategoricalParameterRanges"].append({"Name": name, "Values": list(r.values)})
        else:
            key = "IntegerParameterRanges" if r.type == "integer" else "ContinuousParameterRanges"
            ranges[key].append({"Name": name, "MinValue": str(r.min), "MaxValue": str(r.max), "ScalingType": r.scaling})
    return {k: v for k, v in ranges.items() if v}


def tuning_job(spec: PipelineSpec, env: Environment, run: Run, code_uri: str) -> dict:
    """``sagemaker.CreateHyperParameterTuningJob`` over the spec's ranges."""
    t = spec.tuning
    static = static_hyperparameters(spec, code_uri)
    static.update({k: hyperparameter_value(v) for k, v in spec.training.hyperparameters.items() if k not in t.ranges})
    req = {
        "HyperParameterTuningJobName": run.name(spec, "tune", MAX_TUNING_LEN),
        "HyperParameterTuningJobConfig": {
            "Strategy": t.strategy,
            "HyperParameterTuningJobObjective": {"Type": t.objective_type, "MetricName": t.objective_metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": t.max_jobs, "MaxParallelTrainingJobs": t.max_parallel},
            "ParameterRanges": _parameter_ranges(spec),
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": spec.split.seed,
        },
        "TrainingJobDefinition": {"StaticHyperParameters": static, **_training_common(spec, env, run, code_uri)},
        "Tags": _tags(spec, run),
    }
    defined = [d["Name"] for d in req["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]]
    if t.objective_metric not in defined:  # SageMaker: "The objective metric ... is not defined in MetricDefinitions"
        raise RequestValidationError(
            f"CreateHyperParameterTuningJob: the objective metric {t.objective_metric!r} is not among the request's MetricDefinitions {defined}"
        )
    return validate_request("sagemaker", "CreateHyperParameterTuningJob", req)


# --- model, batch transform, endpoint ----------------------------------------------
def model(spec: PipelineSpec, env: Environment, run: Run, model_data_url: str, code_uri: str) -> dict:
    """``sagemaker.CreateModel``: the trained artifact served by the inference entry point."""
    req = {
        "ModelName": run.name(spec, "model"),
        "PrimaryContainer": {
            "Image": env.image_uri,
            "ModelDataUrl": model_data_url,
            "Environment": {"SAGEMAKER_PROGRAM": INFERENCE_PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": code_uri},
        },
        "ExecutionRoleArn": env.role_arn,
        "EnableNetworkIsolation": spec.security.network_isolation,
        "Tags": _tags(spec, run),
    }
    if spec.security.vpc:
        req["VpcConfig"] = {"Subnets": list(spec.security.vpc.subnets), "SecurityGroupIds": list(spec.security.vpc.security_group_ids)}
    return validate_request("sagemaker", "CreateModel", req)


TRANSFORMS = {
    # purpose: (job name stage, input split folder)
    "test": ("transform", "test"),
    "validation": ("transform-val", "validation_batch"),
    "champion": ("transform-champ", "test"),
}


def transform_job(spec: PipelineSpec, env: Environment, run: Run, model_name: str, purpose: str = "test") -> dict:
    """``sagemaker.CreateTransformJob``: the test split (or the validation split, or the
    serving champion on the test split), output under ``transform/ds=…/<purpose>/``.

    The input files hold ``label,features...`` without a header; ``InputFilter`` drops the
    label before the model sees a record, ``JoinSource: Input`` appends the prediction to
    the input record and ``OutputFilter`` keeps ``label,prediction``.
    """
    loc = locations(spec, env)
    stage, folder = TRANSFORMS[purpose]
    req = {
        "TransformJobName": run.name(spec, stage),
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": loc.features(run.ds, folder)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": loc.transform(run.ds) + f"{purpose}/", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": spec.training.instance_type, "InstanceCount": 1},
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        "Tags": _tags(spec, run),
    }
    if spec.security.kms_key_id:
        req["TransformOutput"]["KmsKeyId"] = spec.security.kms_key_id
        req["TransformResources"]["VolumeKmsKeyId"] = spec.security.kms_key_id
    return validate_request("sagemaker", "CreateTransformJob", req)


SCORE_STAGE = "score"


def scoring_transform_job(spec: PipelineSpec, env: Environment, run: Run, model_name: str, input_uri: str, output_uri: str) -> dict:
    """``sagemaker.CreateTransformJob``: a gated scoring batch through an existing (approved) model.

    The input holds the features only, no header; ``JoinSource: Input`` appends each
    prediction to its input record, so the output is the rows as scored plus their prediction.
    """
    req = {
        "TransformJobName": run.name(spec, SCORE_STAGE),
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": spec.training.instance_type, "InstanceCount": 1},
        "DataProcessing": {"JoinSource": "Input"},
        "Tags": _tags(spec, run),
    }
    if spec.security.kms_key_id:
        req["TransformOutput"]["KmsKeyId"] = spec.security.kms_key_id
        req["TransformResources"]["VolumeKmsKeyId"] = spec.security.kms_key_id
    return validate_request("sagemaker", "CreateTransformJob", req)


def endpoint_name(spec: PipelineSpec) -> str:
    """One endpoint per pipeline; each deployment gives it a new endpoint config."""
    return spec.slug


def endpoint_config(spec: PipelineSpec, run: Run, model_name: str) -> dict:
    req = {
        "EndpointConfigName": run.name(spec, "epc"),
        "ProductionVariants": [
            {
                "VariantName": VARIANT,
                "ModelName": model_name,
                "InstanceType": spec.endpoint.instance_type,
                "InitialInstanceCount": spec.endpoint.instance_count,
            }
        ],
        "Tags": _tags(spec, run),
    }
    if spec.security.kms_key_id:
        req["KmsKeyId"] = spec.security.kms_key_id
    return validate_request("sagemaker", "CreateEndpointConfig", req)


def endpoint(spec: PipelineSpec, config_name: str) -> dict:
    req = {"EndpointName": endpoint_name(spec), "EndpointConfigName": config_name, "Tags": _tags(spec)}
    return validate_request("sagemaker", "CreateEndpoint", req)


def model_package(
    spec: PipelineSpec,
    env: Environment,
    run: Run,
    model_data_url: str,
    code_uri: str,
    version: int,
    decision: str,
    *,
    training_job: str | None = None,
    commit: str | None = None,
) -> dict:
    """``sagemaker.CreateModelPackage``: the model as a version of the pipeline's model package group.

    The package is the registry's record of the model: the container with its inference
    environment (so it deploys as it was tested), the approval the deployment reads, the
    metrics report (``ModelQuality``) and the training window (``ModelDataQuality``), the job
    and commit that made it. ``ClientToken`` makes a retried registration of the same model
    for the same date return the same package instead of a second one.
    """
    loc = locations(spec, env)
    req = {
        "ModelPackageGroupName": spec.slug,
        "ModelPackageDescription": f"registry version {version}, ds={run.ds}",
        "ClientToken": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{spec.slug}/{run.ds}/{version}/{model_data_url}")),
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": env.image_uri,
                    "ModelDataUrl": model_data_url,
                    "Environment": {"SAGEMAKER_PROGRAM": INFERENCE_PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": code_uri},
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelApprovalStatus": decision,
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": loc.evaluation(run.ds) + "metrics.json"}},
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": loc.features(run.ds) + "window.json"}},
        },
        "CustomerMetadataProperties": {"ds": run.ds, "registry_version": str(version)},
        "Tags": _tags(spec, run),
    }
    metadata = {k: v for k, v in (("GeneratedBy", training_job), ("CommitId", commit)) if v}
    if metadata:
        req["MetadataProperties"] = metadata
    return validate_request("sagemaker", "CreateModelPackage", req)
