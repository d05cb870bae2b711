"""IAM: the rendered roles allow what a run calls, on the resources it calls it on, and nothing else.

Fast tier: ARN derivation and rendering (KMS and VPC statements only with a key or subnets),
the least-privilege audit, and the calls that the project's own request builders imply,
evaluated by moto's IAM policy evaluator. The e2e check (in tests/test_pipeline_aws.py) runs the aws DAG against a moto
server and checks every recorded call (and what its jobs imply) against the rendered roles.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gated_ml import job_requests as jr
from gated_ml.errors import SpecError
from gated_ml.iam import arns, check, jobs, render
from gated_ml.iam.calls import Call, Where, airflow_calls
from gated_ml.iam.recording import Request, parse
from gated_ml.naming import MAX_TUNING_LEN, job_name

ACCOUNT, REGION = "123456789012", "us-east-1"
WHERE = Where(REGION, ACCOUNT)
BUCKET = "gated-ml-test-lake"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
IAM = render.IamEnvironment(
    account=ACCOUNT,
    region=REGION,
    bucket=BUCKET,
    airflow_role_arn=f"arn:aws:iam::{ACCOUNT}:role/gated-ml-airflow",
    sagemaker_role_arn=f"arn:aws:iam::{ACCOUNT}:role/gated-ml-sagemaker",
    glue_role_arn=f"arn:aws:iam::{ACCOUNT}:role/gated-ml-glue",
    image_uri=IMAGE,
)
ENV = jr.Environment(bucket=BUCKET, role_arn=IAM.sagemaker_role_arn, image_uri=IMAGE, glue_role_arn=IAM.glue_role_arn)
RUN = jr.Run(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 1)


def _secure(spec, kms=KEY_ID, vpc=True):
    security = {"kms_key_id": kms}
    if vpc:
        security["vpc"] = {"subnets": ["subnet-0aa", "subnet-0bb"], "security_group_ids": ["sg-0cc"]}
    return spec.model_validate({**spec.model_dump(), "security": security})


def _calls_of_builders(spec, env=ENV) -> list[Call]:
    """The requests the DAG sends for one run, from the project's own builders, as the calls they make and imply."""
    code = f"s3://{BUCKET}/{spec.name}/code/abc/sourcedir.tar.gz"
    trained = f"s3://{BUCKET}/{spec.name}/models/{RUN.name(spec, 'train')}/output/model.tar.gz"
    model = jr.model(spec, env, RUN, trained, code)
    epc = jr.endpoint_config(spec, RUN, model["ModelName"])
    requests = [
        Request("glue", "CreateJob", jr.glue_create_job(spec, env, code.replace("sourcedir.tar.gz", "etl.py"))),
        Request("glue", "StartJobRun", jr.glue_job_run(spec, env, RUN)),
        Request("glue", "CreateTable", jr.catalog_table(spec, env)),
        Request("glue", "CreatePartition", jr.catalog_partition(spec, env, RUN)),
        Request("sagemaker", "CreateTrainingJob", jr.training_job(spec, env, RUN, code)),
        Request("sagemaker", "CreateHyperParameterTuningJob", jr.tuning_job(spec, env, RUN, code)),
        Request("sagemaker", "CreateModel", model),
        *[Request("sagemaker", "CreateTransformJob", jr.transform_job(spec, env, RUN, model["ModelName"], p)) for p in jr.TRANSFORMS],
        Request("sagemaker", "CreateEndpointConfig", epc),
        Request("sagemaker", "CreateEndpoint", jr.endpoint(spec, epc["EndpointConfigName"])),
        Request("sagemaker", "InvokeEndpoint", {"EndpointName": jr.endpoint_name(spec)}),
        Request("sagemaker", "CreateModelPackage", jr.model_package(spec, env, RUN, trained, code, 1, "Approved")),
    ]
    return airflow_calls(requests, IAM.airflow_role_arn, WHERE) + jobs.job_role_calls(requests, WHERE)


# --- names and ARNs ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vertebral_column", "a_pipeline_name_long_enough_to_be_cut_x"])
def test_every_job_name_of_every_date_and_try_is_allowed_to_airflow(spec, name):
    """Tuning names are cut to 32 characters (a hash keeps them unique): the ARN patterns still cover them."""
    spec = spec.model_copy(update={"name": name})
    roles = render.render_roles(spec, IAM)
    for date in (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC), dt.datetime(2027, 2, 28, 23, 59, tzinfo=dt.UTC)):
        for try_number in (1, 2, 10, 11):
            tune = job_name(spec.slug, "tune", date, try_number, MAX_TUNING_LEN)
            for kind, job in (
                ("hyper-parameter-tuning-job", tune),
                ("training-job", f"{tune}-007-4c1d9a2e"),
                ("model", job_name(spec.slug, "model", date, try_number)),
            ):
                call = Call(
                    IAM.airflow_role_arn, "sagemaker:Describe" + {"model": "Model"}.get(kind, "TrainingJob"), arns.sagemaker_arn(REGION, ACCOUNT, kind, job)
                )
                if kind == "hyper-parameter-tuning-job":
                    call = Call(call.role_arn, "sagemaker:CreateHyperParameterTuningJob", call.resource)
                assert check.allows(roles["airflow"], call), call


def test_a_cut_tuning_name_is_not_covered_by_the_pipeline_prefix():
    """The reason for deriving patterns: a cut name does not start with the pipeline's slug and a hyphen."""
    name = job_name("vertebral-column", "tune", dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC), 1, MAX_TUNING_LEN)
    assert len(name) <= 32 and not name.startswith("vertebral-column-")
    assert any(p.endswith("*-tune-*") and name.startswith(p.split("*")[0]) for p in arns.name_patterns("vertebral-column", "tune", MAX_TUNING_LEN))


def test_kms_keys_become_key_arns_and_aliases_are_refused():
    assert arns.kms_key_arn(KEY_ID, REGION, ACCOUNT, "security.kms_key_id") == KEY_ARN
    assert arns.kms_key_arn(KEY_ARN, REGION, ACCOUNT, "security.kms_key_id") == KEY_ARN
    for bad in ("alias/lake", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/lake", "not-a-key"):
        with pytest.raises(SpecError, match=r"security\.kms_key_id: .* not a KMS key ARN or key id"):
            arns.kms_key_arn(bad, REGION, ACCOUNT, "security.kms_key_id")


def test_the_image_repository_arn_and_a_non_ecr_image_is_refused():
    assert arns.image_repository_arn(IMAGE) == "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-xgboost"
    with pytest.raises(ValueError, match="is not an ECR image"):
        arns.image_repository_arn("docker.io/library/python:3.11")


# --- rendering --------------------------------------------------------------------------
def _actions(policy: dict) -> set[str]:
    return {a for st in policy["Statement"] for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}


def _resources(policy: dict, prefix: str) -> set[str]:
    return {r for st in policy["Statement"] for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]) if r.startswith(prefix)}


def test_without_a_key_or_subnets_no_role_has_kms_or_ec2_statements(spec):
    assert spec.security.kms_key_id is None and spec.security.vpc is None
    for role in render.render_roles(spec, IAM).values():
        assert not {a for a in _actions(role.policy) if a.startswith(("kms:", "ec2:"))}, role.key
        assert "${" not in str(role.policy) + str(role.trust)


def test_a_spec_key_gets_kms_statements_on_that_key_only(spec):
    roles = render.render_roles(_secure(spec, vpc=False), IAM)
    for key in ("airflow", "sagemaker"):
        assert _resources(roles[key].policy, "arn:aws:kms:") == {KEY_ARN}
    assert not _resources(roles["glue"].policy, "arn:aws:kms:")  # Glue never sees the job key
    other = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/ffffffff-12ab-34cd-56ef-1234567890ab"
    assert check.allows(roles["sagemaker"], Call(IAM.sagemaker_role_arn, "kms:GenerateDataKey", KEY_ARN))
    assert not check.allows(roles["sagemaker"], Call(IAM.sagemaker_role_arn, "kms:GenerateDataKey", other))
    assert not {a for r in roles.values() for a in _actions(r.policy) if a.startswith("ec2:")}


def test_a_lake_key_gets_kms_statements_for_every_role_that_reads_the_lake(spec):
    lake_key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000aaaa-12ab-34cd-56ef-1234567890ab"
    roles = render.render_roles(spec, render.IamEnvironment(**{**IAM.__dict__, "lake_kms_key": lake_key}))
    assert {k: _resources(r.policy, "arn:aws:kms:") for k, r in roles.items()} == {"airflow": {lake_key}, "sagemaker": {lake_key}, "glue": {lake_key}}


def test_subnets_get_the_eni_statements_on_those_subnets(spec):
    roles = render.render_roles(_secure(spec, kms=None), IAM)
    sm = roles["sagemaker"]
    assert _resources(sm.policy, "arn:aws:ec2:") >= {
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0aa",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0cc",
    }
    mine = Call(IAM.sagemaker_role_arn, "ec2:CreateNetworkInterface", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0bb")
    theirs = Call(IAM.sagemaker_role_arn, "ec2:CreateNetworkInterface", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0zz")
    assert check.allows(sm, mine) and not check.allows(sm, theirs)
    assert not {a for a in _actions(roles["glue"].policy) | _actions(roles["airflow"].policy) if a.startswith("ec2:")}


def test_an_unknown_placeholder_fails_the_rendering_naming_it(spec, tmp_path):
    for stem in render.ROLES.values():
        for kind in ("trust", "policy"):
            (tmp_path / f"{stem}-{kind}.json").write_text((render.TEMPLATE_DIR / f"{stem}-{kind}.json").read_text())
    (tmp_path / "glue-role-policy.json").write_text('{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::${Bukket}/*"}]}')
    with pytest.raises(ValueError, match=r"glue-role-policy.json: unknown placeholder\(s\) \['Bukket'\]"):
        render.render_roles(spec, IAM, template_dir=tmp_path)


def test_trust_policies_name_the_service_that_assumes_each_role(spec):
    roles = render.render_roles(spec, IAM)
    assert check.trusts(roles["sagemaker"], "sagemaker.amazonaws.com") and not check.trusts(roles["sagemaker"], "glue.amazonaws.com")
    assert check.trusts(roles["glue"], "glue.amazonaws.com") and not check.trusts(roles["glue"], "sagemaker.amazonaws.com")
    assert check.trusts(roles["airflow"], "airflow-env.amazonaws.com")
    for role in roles.values():
        assert role.trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


# --- least privilege --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vertebral_column", "car_evaluation", "wine_quality"])
def test_no_statement_uses_a_wildcard_where_an_arn_is_known(name):
    from gated_ml.spec import load_pipeline

    spec = _secure(load_pipeline(name))
    lake = render.IamEnvironment(**{**IAM.__dict__, "lake_kms_key": KEY_ARN})
    for role in render.render_roles(spec, lake).values():
        assert check.wildcard_findings(role.policy) == [], role.key


def test_the_wildcard_audit_finds_star_resources_and_action_wildcards():
    policy = {
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject", "ecr:GetAuthorizationToken"], "Resource": "*"},
            {"Sid": "B", "Effect": "Allow", "Action": "sagemaker:*", "Resource": "arn:aws:sagemaker:*:123456789012:model/x"},
        ]
    }
    assert check.wildcard_findings(policy) == [
        "A: s3:GetObject on '*' though it takes a resource ARN",
        "B: action wildcard 'sagemaker:*'",
        "B: 'arn:aws:sagemaker:*:123456789012:model/x' has a wildcard in its partition, service, region or account",
    ]


def test_roles_reach_nothing_of_another_pipeline(spec):
    roles = render.render_roles(spec, IAM)
    other = spec.model_copy(update={"name": "wine_quality"})
    foreign = [
        c for c in _calls_of_builders(other) if c.resource.startswith(("arn:aws:s3:::", "arn:aws:sagemaker:", "arn:aws:glue:")) and ":catalog" not in c.resource
    ]
    foreign = [c for c in foreign if c.action != "s3:ListBucket" and not c.resource.endswith(":database/gated_ml")]
    assert len(foreign) > 40
    by_arn = {r.arn: r for r in roles.values()}
    assert not [str(c) for c in foreign if check.allows(by_arn[c.role_arn], c)]


def test_job_roles_cannot_write_what_they_only_read(spec):
    roles = render.render_roles(spec, IAM)
    for key, zone in (("sagemaker", "features"), ("sagemaker", "landing"), ("glue", "landing"), ("glue", "features")):
        call = Call(roles[key].arn, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/{spec.name}/{zone}/ds=2026-11-01/x")
        assert not check.allows(roles[key], call), call


# --- the calls of a run -----------------------------------------------------------------
@pytest.mark.parametrize("secure", [False, True], ids=["plain", "kms-and-vpc"])
def test_every_call_the_requests_imply_is_allowed_to_its_role(spec, secure):
    spec = _secure(spec) if secure else spec
    calls = _calls_of_builders(spec)
    assert {c.role_arn for c in calls} == {IAM.airflow_role_arn, IAM.sagemaker_role_arn, IAM.glue_role_arn}
    if secure:
        assert {"kms:CreateGrant", "kms:GenerateDataKey", "ec2:CreateNetworkInterface"} <= {c.action for c in calls}
    assert check.denied(calls, render.render_roles(spec, IAM)) == []


def test_a_job_that_runs_as_an_unrendered_role_is_denied(spec):
    stranger = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    env = jr.Environment(bucket=BUCKET, role_arn=stranger, image_uri=IMAGE, glue_role_arn=IAM.glue_role_arn)
    denied = check.denied(_calls_of_builders(spec, env), render.render_roles(spec, IAM))
    assert any(line.startswith(f"iam:PassRole on {stranger}") and "not allowed by the airflow role" in line for line in denied)
    assert any(f"no rendered role has the ARN '{stranger}'" in line for line in denied)


def test_a_role_passed_to_the_wrong_service_is_denied(spec):
    roles = render.render_roles(spec, IAM)
    call = Call(IAM.airflow_role_arn, "iam:PassRole", IAM.glue_role_arn, (("iam:PassedToService", "sagemaker.amazonaws.com"),))
    assert check.denied([call], roles) and not check.allows(roles["airflow"], call)


def test_a_call_without_a_derivation_rule_is_denied_not_skipped(spec):
    calls = airflow_calls([Request("sagemaker", "CreateCluster", {}), Request("kinesis", "PutRecord", {})], IAM.airflow_role_arn, WHERE)
    assert [c.action for c in calls] == ["unknown:sagemaker:CreateCluster", "unknown:kinesis:PutRecord"]
    assert len(check.denied(calls, render.render_roles(spec, IAM))) == 2


def test_recorded_rest_requests_parse_to_their_operations():
    auth = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"}
    base = "http://127.0.0.1:5000"
    assert parse({"headers": auth, "method": "GET", "url": f"{base}/b?list-type=2&prefix=p%2Fq%2F"}) == Request(
        "s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "p/q/"}
    )
    assert parse({"headers": auth, "method": "HEAD", "url": f"{base}/b/k%3D1/x.csv"}) == Request("s3", "HeadObject", {"Bucket": "b", "Key": "k=1/x.csv"})
    sse = {**auth, "x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN}
    put = parse({"headers": sse, "method": "PUT", "url": f"{base}/b/k"})
    assert [(c.action, c.resource) for c in airflow_calls([put], IAM.airflow_role_arn, WHERE)] == [
        ("s3:PutObject", "arn:aws:s3:::b/k"),
        ("kms:GenerateDataKey", KEY_ARN),
    ]
    runtime = {"Authorization": auth["Authorization"].replace("/s3/", "/sagemaker/")}
    assert parse({"headers": runtime, "method": "POST", "url": f"{base}/endpoints/vertebral-column/invocations"}) == Request(
        "sagemaker", "InvokeEndpoint", {"EndpointName": "vertebral-column"}
    )
    assert parse({"headers": auth, "method": "POST", "url": f"{base}/moto-api/recorder/start-recording"}) is None
