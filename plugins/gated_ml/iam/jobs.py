"""The calls a job makes as the role it was handed, implied by the job's own request.

SageMaker training, tuning trials, batch transform and the endpoint run as the execution role
(``RoleArn``, or the model's ``ExecutionRoleArn``); a Glue job run runs as the job's ``Role``.
Each rule lists what that job reads, writes, pulls and logs, from the request's fields.
"""

from __future__ import annotations

from gated_ml.iam import arns
from gated_ml.iam.calls import Call, Where
from gated_ml.iam.recording import Request

Derived = list[tuple[str, str, dict]]


def _read_prefix(uri: str) -> Derived:
    bucket, _, key = uri[5:].partition("/")
    return [("s3:ListBucket", arns.s3_bucket_arn(bucket), {"s3:prefix": key}), ("s3:GetObject", arns.s3_object_arn(uri) + "*", {})]


def _image(image_uri: str) -> Derived:
    repo = arns.image_repository_arn(image_uri)
    pulls = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
    return [(a, repo, {}) for a in pulls] + [("ecr:GetAuthorizationToken", "*", {})]


def _logs(w: Where, group: str, stream: str) -> Derived:
    base = f"arn:aws:logs:{w.region}:{w.account}:log-group:{group}"
    return [
        ("logs:CreateLogGroup", base, {}),
        ("logs:CreateLogStream", f"{base}:log-stream:{stream}", {}),
        ("logs:PutLogEvents", f"{base}:log-stream:{stream}", {}),
    ]


def _output_key(key: str | None, w: Where) -> Derived:
    if not key:
        return []
    arn = arns.kms_key_arn(key, w.region, w.account, "KmsKeyId")
    return [("kms:GenerateDataKey", arn, {}), ("kms:Encrypt", arn, {})]


def _vpc(vpc: dict | None, w: Where) -> Derived:
    if not vpc:
        return []
    eni = f"arn:aws:ec2:{w.region}:{w.account}:network-interface/*"
    create = [("ec2:CreateNetworkInterface", arn, {}) for arn in arns.ec2_arns(w.region, w.account, "subnet", vpc["Subnets"])]
    create += [("ec2:CreateNetworkInterface", arn, {}) for arn in arns.ec2_arns(w.region, w.account, "security-group", vpc["SecurityGroupIds"])]
    manage = [(a, eni, {}) for a in ("ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface")]
    describe = [(a, "*", {}) for a in ("ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets")]
    return create + manage + describe


def _training(definition: dict, job_name: str, w: Where) -> Derived:
    out = []
    for channel in definition["InputDataConfig"]:
        out += _read_prefix(channel["DataSource"]["S3DataSource"]["S3Uri"])
    hp = definition.get("HyperParameters") or definition.get("StaticHyperParameters") or {}
    if code := hp.get("sagemaker_submit_directory"):
        out.append(("s3:GetObject", arns.s3_object_arn(code), {}))
    output = definition["OutputDataConfig"]
    out.append(("s3:PutObject", arns.s3_object_arn(output["S3OutputPath"].rstrip("/") + f"/{job_name}/") + "*", {}))
    out += _image(definition["AlgorithmSpecification"]["TrainingImage"])
    out += _logs(w, "/aws/sagemaker/TrainingJobs", f"{job_name}/algo-1-0000000000")
    out.append(("cloudwatch:PutMetricData", "*", {}))
    return out + _output_key(output.get("KmsKeyId"), w) + _vpc(definition.get("VpcConfig"), w)


def _container(model: dict, w: Where) -> Derived:
    container = model.get("PrimaryContainer") or model["Containers"][0]
    out = [("s3:GetObject", arns.s3_object_arn(container["ModelDataUrl"]), {})]
    if code := container.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY"):
        out.append(("s3:GetObject", arns.s3_object_arn(code), {}))
    return out + _image(container["Image"]) + _vpc(model.get("VpcConfig"), w)


def _glue_run(start: dict, job: dict, w: Where) -> Derived:
    command = job.get("Command", {})
    out = [("s3:GetObject", arns.s3_object_arn(command["ScriptLocation"]), {})] if command.get("ScriptLocation") else []
    extra = job.get("DefaultArguments", {}).get("--extra-py-files", "")
    out += [("s3:GetObject", arns.s3_object_arn(u), {}) for u in filter(None, extra.split(","))]
    args = start.get("Arguments", {})
    if source := args.get("--source_uri"):
        out += [("s3:GetObject", arns.s3_object_arn(source), {})] + _read_prefix(source.rsplit("/", 1)[0] + "/")[:1]
    if target := args.get("--output_uri"):
        for prefix in (target, target.rstrip("/") + "._staging/"):  # etl.py stages next to the partition
            out += _read_prefix(prefix) + [(a, arns.s3_object_arn(prefix) + "*", {}) for a in ("s3:PutObject", "s3:DeleteObject")]
    out += _logs(w, "/aws-glue/jobs/output", start["JobName"] + "-run")
    return out + [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Glue"})]


def job_role_calls(requests: list[Request], w: Where) -> list[Call]:
    """The job roles' calls implied by the Create/Start requests of a run (in recording order)."""
    models, configs, glue_jobs, out = {}, {}, {}, []

    def add(role: str, derived: Derived, source: str):
        out.extend(Call(role, a, arn, tuple(sorted(ctx.items())), source) for a, arn, ctx in derived)

    for r in requests:
        p, op = r.params, f"{r.service}.{r.operation}"
        if op == "sagemaker.CreateTrainingJob":
            add(p["RoleArn"], _training(p, p["TrainingJobName"], w), op)
        elif op == "sagemaker.CreateHyperParameterTuningJob":
            definition = p["TrainingJobDefinition"]
            add(definition["RoleArn"], _training(definition, p["HyperParameterTuningJobName"] + "-001-0a1b2c3d", w), op)
        elif op == "sagemaker.CreateModel":
            models[p["ModelName"]] = p
        elif op == "sagemaker.CreateTransformJob" and p["ModelName"] in models:
            model, output = models[p["ModelName"]], p["TransformOutput"]
            derived = _container(model, w) + _read_prefix(p["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
            derived += [("s3:PutObject", arns.s3_object_arn(output["S3OutputPath"]) + "*", {})] + _output_key(output.get("KmsKeyId"), w)
            add(model["ExecutionRoleArn"], derived + _logs(w, "/aws/sagemaker/TransformJobs", f"{p['TransformJobName']}/i-0"), op)
        elif op == "sagemaker.CreateEndpointConfig":
            configs[p["EndpointConfigName"]] = p
        elif op in ("sagemaker.CreateEndpoint", "sagemaker.UpdateEndpoint") and p["EndpointConfigName"] in configs:
            for variant in configs[p["EndpointConfigName"]]["ProductionVariants"]:
                if model := models.get(variant["ModelName"]):
                    logs = _logs(w, f"/aws/sagemaker/Endpoints/{p['EndpointName']}", f"{variant['VariantName']}/i-0")
                    add(model["ExecutionRoleArn"], _container(model, w) + logs + [("cloudwatch:PutMetricData", "*", {})], op)
        elif op in ("glue.CreateJob", "glue.UpdateJob"):
            glue_jobs[p.get("Name") or p["JobName"]] = p.get("JobUpdate", p)
        elif op == "glue.StartJobRun" and p["JobName"] in glue_jobs:
            job = glue_jobs[p["JobName"]]
            add(job["Role"], _glue_run(p, job, w), op)
    return out
