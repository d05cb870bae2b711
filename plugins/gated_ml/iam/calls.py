"""Who calls what: the requests of a run as (calling role, IAM action, resource ARN).

Airflow's role makes every recorded control-plane call (:func:`airflow_calls`). The job roles
make the calls a job's request implies (:func:`job_role_calls`): the SageMaker execution role
(``RoleArn``/``ExecutionRoleArn``) reads channels, code and model data, writes outputs, pulls
the image and writes logs; the Glue role (``Role`` of the job) reads the script and the batch
and rewrites the curated partition. An object prefix is represented as ``<prefix>*`` (any
object under it). An operation with no rule here becomes a call of action ``unknown:…`` that
no policy allows, so a new call is never passed silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gated_ml.iam import arns
from gated_ml.iam.recording import Request


@dataclass(frozen=True)
class Call:
    role_arn: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()  # condition keys of the request
    source: str = field(default="", compare=False)  # the request that implies it

    def __str__(self) -> str:
        ctx = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{ctx} as {self.role_arn} ({self.source})"


@dataclass(frozen=True)
class Where:
    region: str
    account: str


# --- S3 --------------------------------------------------------------------------
S3_ACTIONS = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject", "DeleteObject": "s3:DeleteObject"}


def _s3(r: Request, w: Where) -> list[tuple[str, str, dict]]:
    p = r.params
    if r.operation in ("ListObjectsV2", "HeadBucket"):
        return [("s3:ListBucket", arns.s3_bucket_arn(p["Bucket"]), {"s3:prefix": p["Prefix"]} if "Prefix" in p else {})]
    if r.operation == "CopyObject":
        return [("s3:PutObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}", {}), ("s3:GetObject", f"arn:aws:s3:::{p['CopySource'].lstrip('/')}", {})]
    if r.operation not in S3_ACTIONS:
        return [(f"unknown:s3:{r.operation}", f"arn:aws:s3:::{p.get('Bucket', '')}", {})]
    out = [(S3_ACTIONS[r.operation], f"arn:aws:s3:::{p['Bucket']}/{p['Key']}", {})]
    if p.get("SSEKMSKeyId"):
        out.append(("kms:GenerateDataKey", arns.kms_key_arn(p["SSEKMSKeyId"], w.region, w.account, "SSEKMSKeyId"), {}))
    return out


# --- Glue ------------------------------------------------------------------------
_GLUE_JOB_NAME = {"CreateJob": "Name", "UpdateJob": "JobName", "GetJob": "JobName", "StartJobRun": "JobName", "GetJobRun": "JobName", "GetJobRuns": "JobName"}


def _glue_catalog(w: Where, database: str, table: str | None = None) -> list[str]:
    base = f"arn:aws:glue:{w.region}:{w.account}"
    return [f"{base}:catalog", f"{base}:database/{database}", *([f"{base}:table/{database}/{table}"] if table else [])]


def _glue(r: Request, w: Where) -> list[tuple[str, str, dict]]:
    p, action = r.params, f"glue:{r.operation}"
    if r.operation in _GLUE_JOB_NAME:
        out = [(action, f"arn:aws:glue:{w.region}:{w.account}:job/{p[_GLUE_JOB_NAME[r.operation]]}", {})]
        role = p.get("Role") or p.get("JobUpdate", {}).get("Role")
        return out + ([("iam:PassRole", role, {"iam:PassedToService": "glue.amazonaws.com"})] if role else [])
    if r.operation in ("GetTags", "TagResource", "UntagResource"):
        return [(action, p["ResourceArn"], {})]
    if r.operation in ("CreateDatabase", "GetDatabase"):
        return [(action, arn, {}) for arn in _glue_catalog(w, p.get("DatabaseInput", {}).get("Name") or p.get("Name"))]
    if r.operation in ("CreateTable", "GetTable"):
        return [(action, arn, {}) for arn in _glue_catalog(w, p["DatabaseName"], p.get("TableInput", {}).get("Name") or p.get("Name"))]
    if r.operation in ("CreatePartition", "GetPartition", "GetPartitions", "BatchCreatePartition"):
        return [(action, arn, {}) for arn in _glue_catalog(w, p["DatabaseName"], p["TableName"])]
    return [(f"unknown:{action}", "", {})]


# --- SageMaker -------------------------------------------------------------------
# the resource noun of an operation -> (the parameter naming it, the ARN's resource type)
_NOUNS = {
    "HyperParameterTuningJob": ("HyperParameterTuningJobName", "hyper-parameter-tuning-job"),
    "TrainingJob": ("TrainingJobName", "training-job"),
    "TransformJob": ("TransformJobName", "transform-job"),
    "EndpointConfig": ("EndpointConfigName", "endpoint-config"),
    "Endpoint": ("EndpointName", "endpoint"),
    "ModelPackageGroup": ("ModelPackageGroupName", "model-package-group"),
    "Model": ("ModelName", "model"),
}
_VERBS = ("Create", "Describe", "Update", "Stop", "Delete", "Invoke")
_PASSED_ROLES = {"CreateTrainingJob": ("RoleArn",), "CreateModel": ("ExecutionRoleArn",), "CreateHyperParameterTuningJob": ("TrainingJobDefinition", "RoleArn")}


def _dig(params: dict, path: tuple[str, ...]):
    for key in path:
        params = params.get(key) if isinstance(params, dict) else None
    return params


def _sagemaker_arn(r: Request, w: Where) -> str | None:
    p, op = r.params, r.operation
    if op in ("AddTags", "ListTags", "DeleteTags"):
        return p["ResourceArn"]
    if op == "ListTrainingJobsForHyperParameterTuningJob":
        return arns.sagemaker_arn(w.region, w.account, "hyper-parameter-tuning-job", p["HyperParameterTuningJobName"])
    if op == "ListModelPackages":  # no resource type in the Service Authorization Reference
        return "*"
    if op == "CreateModelPackage":
        return arns.sagemaker_arn(w.region, w.account, "model-package", f"{p['ModelPackageGroupName']}/*")
    if op in ("DescribeModelPackage", "UpdateModelPackage"):
        name = p.get("ModelPackageName") or p["ModelPackageArn"]
        return name.lower() if name.startswith("arn:") else arns.sagemaker_arn(w.region, w.account, "model-package", name)
    verb = next((v for v in _VERBS if op.startswith(v)), None)
    noun = op[len(verb) :] if verb else None
    if noun in _NOUNS:
        param, kind = _NOUNS[noun]
        return arns.sagemaker_arn(w.region, w.account, kind, p[param])
    return None


def _volume_keys(p: dict) -> list[str]:
    found = [_dig(p, path) for path in (("ResourceConfig", "VolumeKmsKeyId"), ("TransformResources", "VolumeKmsKeyId"), ("KmsKeyId",))]
    found.append(_dig(p, ("TrainingJobDefinition", "ResourceConfig", "VolumeKmsKeyId")))
    return [k for k in found if k]


def _sagemaker(r: Request, w: Where) -> list[tuple[str, str, dict]]:
    arn = _sagemaker_arn(r, w)
    if arn is None:
        return [(f"unknown:sagemaker:{r.operation}", "", {})]
    out = [(f"sagemaker:{r.operation}", arn, {})]
    if r.operation.startswith("Create") and r.params.get("Tags"):
        out.append(("sagemaker:AddTags", arn, {}))  # tagging on create needs AddTags too
    if role := _dig(r.params, _PASSED_ROLES.get(r.operation, ("-",))):
        out.append(("iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}))
    if r.operation.startswith("Create"):  # SageMaker creates grants on the volume key as the caller
        for key in _volume_keys(r.params):
            key_arn = arns.kms_key_arn(key, w.region, w.account, "VolumeKmsKeyId")
            out += [("kms:CreateGrant", key_arn, {}), ("kms:DescribeKey", key_arn, {})]
    return out


RULES = {"s3": _s3, "glue": _glue, "sagemaker": _sagemaker}


def airflow_calls(requests: list[Request], role_arn: str, w: Where) -> list[Call]:
    """Every recorded request, as the Airflow role's calls."""
    out = []
    for r in requests:
        rule = RULES.get(r.service)
        derived = rule(r, w) if rule else [(f"unknown:{r.service}:{r.operation}", "", {})]
        out += [Call(role_arn, action, arn, tuple(sorted(ctx.items())), f"{r.service}.{r.operation}") for action, arn, ctx in derived]
    return out
