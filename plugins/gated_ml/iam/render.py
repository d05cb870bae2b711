"""The templates of ``include/iam/`` rendered for one pipeline spec and one account.

A template is an IAM document with ``${Name}`` placeholders. A string holding a placeholder is
filled in; a list element that is exactly ``"${Names}"`` of a list value (job ARN patterns,
subnets) becomes that many elements. Statements whose ``Sid`` starts with ``SpecKms``,
``LakeKms`` or ``Vpc`` are kept only when the spec sets ``security.kms_key_id``, the lake has
a key (``[gated_ml] kms_key_id``) or the spec sets ``security.vpc``. A placeholder the
renderer does not know fails the rendering, naming the template and the placeholder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from gated_ml import job_requests as jr
from gated_ml.iam import arns
from gated_ml.spec import PROJECT_ROOT, PipelineSpec

TEMPLATE_DIR = PROJECT_ROOT / "include" / "iam"
ROLES = {  # role key -> template stem
    "airflow": "airflow-role",
    "sagemaker": "sagemaker-execution-role",
    "glue": "glue-role",
}
MWAA_SERVICES = ("airflow.amazonaws.com", "airflow-env.amazonaws.com")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+)\}")


@dataclass(frozen=True)
class IamEnvironment:
    """The account-specific values of the roles (never in the repository)."""

    account: str
    region: str
    bucket: str
    airflow_role_arn: str
    sagemaker_role_arn: str
    glue_role_arn: str
    image_uri: str
    lake_kms_key: str | None = None  # [gated_ml] kms_key_id: SSE-KMS of the objects Airflow writes
    airflow_services: tuple[str, ...] = field(default=MWAA_SERVICES)  # who assumes the Airflow role

    @classmethod
    def of(cls, env: jr.Environment, account: str, region: str, airflow_role_arn: str, lake_kms_key: str | None = None, **kw) -> IamEnvironment:
        """From a target's :class:`~gated_ml.job_requests.Environment` (bucket, role ARNs, image)."""
        return cls(account, region, env.bucket, airflow_role_arn, env.role_arn, env.glue_role_arn, env.image_uri, lake_kms_key, **kw)


@dataclass(frozen=True)
class Role:
    key: str
    arn: str
    trust: dict
    policy: dict


def _values(spec: PipelineSpec, iam: IamEnvironment) -> tuple[dict[str, str], dict[str, list[str]]]:
    r, a = iam.region, iam.account
    sec = spec.security
    scalars = {
        "Account": a,
        "Region": r,
        "Bucket": iam.bucket,
        "Pipeline": spec.name,
        "GlueJob": jr.glue_job_name(spec),
        "Database": jr.GLUE_DATABASE,
        "Table": spec.name,
        "Endpoint": jr.endpoint_name(spec),
        "PackageGroup": spec.slug,
        "SageMakerExecutionRoleArn": iam.sagemaker_role_arn,
        "GlueRoleArn": iam.glue_role_arn,
        "ImageRepositoryArn": arns.image_repository_arn(iam.image_uri),
        "SpecKmsKeyArn": arns.kms_key_arn(sec.kms_key_id, r, a, "security.kms_key_id") if sec.kms_key_id else "",
        "LakeKmsKeyArn": arns.kms_key_arn(iam.lake_kms_key, r, a, "[gated_ml] kms_key_id") if iam.lake_kms_key else "",
    }
    jobs = {t: arns.job_arns(spec.slug, r, a, t) for t in arns.JOB_STAGES}
    log_streams = {
        group: [f"arn:aws:logs:{r}:{a}:log-group:/aws/sagemaker/{group}:log-stream:{p}" for stage, n in stages for p in arns.name_patterns(spec.slug, stage, n)]
        for group, stages in (
            ("TrainingJobs", arns.JOB_STAGES["training-job"] + arns.JOB_STAGES["hyper-parameter-tuning-job"]),
            ("TransformJobs", arns.JOB_STAGES["transform-job"]),
        )
    }
    lists = {
        "TrainingJobArns": jobs["training-job"],
        "TuningJobArns": jobs["hyper-parameter-tuning-job"],
        "ModelArns": jobs["model"],
        "TransformJobArns": jobs["transform-job"],
        "EndpointConfigArns": jobs["endpoint-config"],
        "TrainingJobLogStreams": log_streams["TrainingJobs"],
        "TransformJobLogStreams": log_streams["TransformJobs"],
        "SubnetArns": arns.ec2_arns(r, a, "subnet", sec.vpc.subnets) if sec.vpc else [],
        "SecurityGroupArns": arns.ec2_arns(r, a, "security-group", sec.vpc.security_group_ids) if sec.vpc else [],
        "AirflowServices": list(iam.airflow_services),
    }
    return scalars, lists


class _Many(list):
    """A list placeholder's values, spliced into the enclosing list."""


def _fill(node, scalars: dict, lists: dict, where: str):
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole and whole[1] in lists:
            return _Many(lists[whole[1]])
        unknown = sorted({m for m in _PLACEHOLDER.findall(node) if m not in scalars})
        if unknown:
            raise ValueError(f"{where}: unknown placeholder(s) {unknown} in {node!r}; known: {sorted(scalars) + sorted(lists)}")
        return _PLACEHOLDER.sub(lambda m: scalars[m[1]], node)
    if isinstance(node, list):
        out = []
        for item in node:
            value = _fill(item, scalars, lists, where)
            out.extend(value) if isinstance(value, _Many) else out.append(value)
        return out
    if isinstance(node, dict):
        return {k: (list(v) if isinstance(v, _Many) else v) for k, v in ((k, _fill(v, scalars, lists, where)) for k, v in node.items())}
    return node


def _wanted(statement: dict, spec: PipelineSpec, iam: IamEnvironment) -> bool:
    sid = statement.get("Sid", "")
    if sid.startswith("SpecKms"):
        return bool(spec.security.kms_key_id)
    if sid.startswith("LakeKms"):
        return bool(iam.lake_kms_key)
    if sid.startswith("Vpc"):
        return spec.security.vpc is not None
    return True


def render_document(path: Path, spec: PipelineSpec, iam: IamEnvironment) -> dict:
    """One template filled in for ``spec`` and ``iam``, without the statements the spec does not need."""
    template = json.loads(path.read_text())
    template["Statement"] = [s for s in template["Statement"] if _wanted(s, spec, iam)]
    scalars, lists = _values(spec, iam)
    return _fill(template, scalars, lists, path.name)


def render_roles(spec: PipelineSpec, iam: IamEnvironment, template_dir: Path = TEMPLATE_DIR) -> dict[str, Role]:
    """The Airflow role, the SageMaker execution role and the Glue role of one pipeline."""
    role_arns = {"airflow": iam.airflow_role_arn, "sagemaker": iam.sagemaker_role_arn, "glue": iam.glue_role_arn}
    return {
        key: Role(
            key=key,
            arn=role_arns[key],
            trust=render_document(template_dir / f"{stem}-trust.json", spec, iam),
            policy=render_document(template_dir / f"{stem}-policy.json", spec, iam),
        )
        for key, stem in ROLES.items()
    }
