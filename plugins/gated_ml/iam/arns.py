"""The ARNs of what one pipeline touches, derived from the code that names it.

Job names come from :func:`gated_ml.naming.job_name`, which shortens the pipeline part (and
adds a 4-character hash) when a name would pass its limit: 32 characters for tuning jobs,
63 for the rest. :func:`name_patterns` asks that function for the names of every date and
try shape and turns each into an IAM pattern, so a shortened name is covered too.
"""

from __future__ import annotations

import datetime as dt
import re

from gated_ml.errors import SpecError
from gated_ml.naming import MAX_LEN, MAX_TUNING_LEN, date_token, job_name

# SageMaker resource type -> the stages (naming) and length limit of the names of that type
JOB_STAGES = {
    "training-job": (("train", MAX_LEN),),
    "hyper-parameter-tuning-job": (("tune", MAX_TUNING_LEN),),
    "model": (("model", MAX_LEN),),
    "transform-job": (("transform", MAX_LEN), ("transform-val", MAX_LEN), ("transform-champ", MAX_LEN)),
    "endpoint-config": (("epc", MAX_LEN),),
}
# every shape of the varying part: a midnight or timed run, a one- or two-digit try (retries <= 10)
_SHAPES = [
    (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1),
    (dt.datetime(2026, 1, 1, 6, 30, tzinfo=dt.UTC), 1),
    (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 11),
    (dt.datetime(2026, 1, 1, 6, 30, tzinfo=dt.UTC), 11),
]
_DIGEST = 4  # naming.job_name's hash length
_KEY_ID = re.compile(r"^(mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$|^mrk-[0-9a-f]{32}$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(.+)$")
_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/(?P<repo>[^:@]+)[:@].+$")


def name_patterns(slug: str, stage: str, max_len: int) -> list[str]:
    """IAM name patterns matching every name ``job_name(slug, stage, …)`` can give."""
    patterns = set()
    for date, try_number in _SHAPES:
        name = job_name(slug, stage, date, try_number, max_len)
        head = name[: -len(f"-{stage}-{date_token(date)}-{try_number}")]
        patterns.add(f"{slug}-{stage}-*" if head == slug else f"{head[:-_DIGEST]}*-{stage}-*")
    return sorted(patterns)


def sagemaker_arn(region: str, account: str, resource_type: str, name: str) -> str:
    """SageMaker keeps names in lower case in its ARNs."""
    return f"arn:aws:sagemaker:{region}:{account}:{resource_type}/{name.lower()}"


def job_arns(slug: str, region: str, account: str, resource_type: str) -> list[str]:
    """ARN patterns of one SageMaker resource type for one pipeline (training jobs include the tuning job's trials)."""
    stages = JOB_STAGES[resource_type] + (JOB_STAGES["hyper-parameter-tuning-job"] if resource_type == "training-job" else ())
    return [sagemaker_arn(region, account, resource_type, p) for stage, max_len in stages for p in name_patterns(slug, stage, max_len)]


def kms_key_arn(key: str, region: str, account: str, field: str) -> str:
    """The key ARN IAM needs for ``key`` (a key ARN or key id); an alias is refused, naming ``field``."""
    if _KEY_ARN.match(key):
        return key
    if _KEY_ID.match(key):
        return f"arn:aws:kms:{region}:{account}:key/{key}"
    raise SpecError(
        f"{field}: {key!r} is not a KMS key ARN or key id; IAM policies grant KMS actions on keys, not aliases: "
        "set the key's ARN (arn:aws:kms:<region>:<account>:key/<id>) or its key id"
    )


def image_repository_arn(image_uri: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` -> the repository's ARN."""
    m = _IMAGE.match(image_uri)
    if not m:
        raise ValueError(f"image URI {image_uri!r} is not an ECR image (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)")
    return f"arn:aws:ecr:{m['region']}:{m['account']}:repository/{m['repo']}"


def ec2_arns(region: str, account: str, kind: str, ids) -> list[str]:
    return [f"arn:aws:ec2:{region}:{account}:{kind}/{i}" for i in ids]


def s3_object_arn(uri: str) -> str:
    """``s3://bucket/key`` -> ``arn:aws:s3:::bucket/key``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3:// URI, got {uri!r}")
    return f"arn:aws:s3:::{uri[5:]}"


def s3_bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"
