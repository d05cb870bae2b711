"""Deployment: the endpoint request, the smoke test, and the model package in the registry.

A model is deployed only when the model gate approved it and no model trained on newer data
serves (:func:`check_deployable`). The smoke test sends test rows through a stock boto3
``sagemaker-runtime`` client and requires the endpoint's answers to equal batch
transform's (:func:`check_agreement`; answers that differ are a refusal, an endpoint that
could not answer is a fault, retried): targets run it before a new model takes traffic
(``Step.check``) and the ``smoke_test_endpoint`` task runs it again through the public
endpoint. The model is crowned champion in the registry when its endpoint serves.
"""

from __future__ import annotations

import logging

from gated_ml import job_requests as jr
from gated_ml import run_params
from gated_ml.errors import SkipDeployment, SmokeTestFailed, SmokeTestUnanswered
from gated_ml.evaluation import registry
from gated_ml.evaluation.predictions import read_predictions
from gated_ml.job_requests import Environment, Run
from gated_ml.spec import PipelineSpec
from gated_ml.stages.data import test_records
from gated_ml.steps import Step

log = logging.getLogger(__name__)


def check_deployable(spec: PipelineSpec, env: Environment, run: Run, evaluation: dict, package: dict) -> None:
    """Raise :class:`SkipDeployment` unless the model registry approves this run's model and no newer model serves.

    The approval is the model package's, as the registry answers it (``DescribeModelPackage``),
    not the evaluation's own decision: the registry is the one place approvals live. A run
    whose ``deploy`` param is false registers its model and deploys nothing.
    """
    if not run_params.value(spec, run, run_params.DEPLOY):
        raise SkipDeployment(
            f"model version {evaluation['version']} is registered ({package['approval']}, {package['model_package_arn']}) and not deployed: "
            f"the run's param {run_params.DEPLOY} is false; promote the version or trigger a run with {run_params.DEPLOY}=true to deploy"
        )
    if package["approval"] != "Approved":
        raise SkipDeployment(
            f"model version {evaluation['version']} is {package['approval']} in the model registry ({package['model_package_arn']}): not deployed"
        )
    champ = registry.champion(spec, env)
    if champ is not None and champ["ds"] > run.ds:
        raise SkipDeployment(f"a newer model (version {champ['version']}, ds={champ['ds']}) serves: a backfill of ds={run.ds} never replaces it")


# the runtime's answers that say nothing about the model's predictions: the container failed or the service is busy
TRANSIENT_CODES = ("ModelError", "ModelNotReadyException", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalDependencyException")


def invoke(client, endpoint: str, body: str) -> str:
    """The endpoint's answer to ``body`` (CSV rows); an error is judged transient (retried) or not.

    ``ModelError`` (the container failed, 424), a 5xx, a throttle or a lost connection is
    :class:`SmokeTestUnanswered`, a :class:`~gated_ml.errors.Fault`: the deployment rolls back
    and the task is retried. Any other error the runtime answers (a ``ValidationError``, access
    denied) would answer a retry the same way: :class:`SmokeTestFailed`, never retried.
    """
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    try:
        response = client.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=body.encode())
        return response["Body"].read().decode()
    except ClientError as e:
        error, status = e.response.get("Error", {}), e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        said = f"smoke test: endpoint {endpoint} answered InvokeEndpoint with {error.get('Code')} ({status}): {error.get('Message', '')}"
        if error.get("Code") in TRANSIENT_CODES or status >= 500:
            raise SmokeTestUnanswered(f"{said}; its predictions are unknown: the deployment is retried (if it persists, read the container's log)") from e
        raise SmokeTestFailed(f"{said}; a retry would be answered the same: fix the endpoint config, the model or the IAM policy") from e
    except (ConnectionError, HTTPClientError) as e:
        raise SmokeTestUnanswered(f"smoke test: endpoint {endpoint} did not answer InvokeEndpoint ({e}); the deployment is retried") from e


def check_agreement(spec: PipelineSpec, env: Environment, run: Run, client, output_uris: list[str]) -> int:
    """Invoke the endpoint through a boto3 ``sagemaker-runtime`` client with test rows; the answers must equal batch transform's.

    Answers that differ (or a wrong number of them) are :class:`SmokeTestFailed`, never
    retried; an endpoint that could not answer is :class:`SmokeTestUnanswered`, retried (:func:`invoke`).
    """
    import numpy as np

    n = spec.endpoint.smoke_test_rows
    test_lines = test_records(spec, env, run)[:n]
    body = "".join(line.split(",", 1)[1] + "\n" for line in test_lines)  # drop the label, as InputFilter $[1:] does
    answers = [line for line in invoke(client, jr.endpoint_name(spec), body).splitlines() if line.strip()]
    expected = read_predictions(spec, output_uris)["prediction"].tolist()[: len(test_lines)]
    if len(answers) != len(test_lines):
        raise SmokeTestFailed(f"smoke test: the endpoint answered {len(answers)} predictions for {len(test_lines)} rows")
    if spec.problem_type == "multiclass_classification":
        agree = [a == str(e) for a, e in zip(answers, expected, strict=True)]
    else:
        agree = list(np.isclose([float(a) for a in answers], [float(e) for e in expected], rtol=1e-6, atol=1e-6))
    if not all(agree):
        bad = [i for i, ok in enumerate(agree) if not ok]
        raise SmokeTestFailed(
            f"smoke test: endpoint and batch transform disagree on test rows {bad}: {[answers[i] for i in bad]} vs {[expected[i] for i in bad]}"
        )
    return len(answers)


def endpoint_request(spec: PipelineSpec, env: Environment, run: Run, model: dict, evaluation: dict, transformed: dict, package: dict) -> dict:
    """``CreateEndpointConfig`` for this run's model and ``CreateEndpoint`` (or its update) pointing at it."""
    check_deployable(spec, env, run, evaluation, package)
    config = jr.endpoint_config(spec, run, model["model_name"])
    return {"EndpointConfig": config, "Endpoint": jr.endpoint(spec, config["EndpointConfigName"])}


def endpoint_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, *, evaluation: dict, **inputs) -> dict:
    """The endpoint serves this run's model: crown it in the registry."""
    config = request["EndpointConfig"]["EndpointConfigName"]
    registry.crown(spec, env, evaluation["version"], config)
    return {
        "endpoint_name": request["Endpoint"]["EndpointName"],
        "endpoint_config": config,
        "url": (describe or {}).get("Url"),
        "version": evaluation["version"],
    }


def smoke_check(spec: PipelineSpec, env: Environment, run: Run, client, *, transformed: dict, **inputs) -> int:
    return check_agreement(spec, env, run, client, transformed["output_uris"])


DEPLOY_ENDPOINT = Step("deploy_endpoint", endpoint_request, endpoint_result, check=smoke_check)


def _replaced_by(spec: PipelineSpec, env: Environment, endpoint: dict) -> dict | None:
    """The champion that replaced this run's deployment on the endpoint since, if one did."""
    champ = registry.champion(spec, env)
    return champ if champ is not None and champ["endpoint_config"] != endpoint["endpoint_config"] else None


def smoke_test(spec: PipelineSpec, env: Environment, run: Run, endpoint: dict, output_uris: list[str], client) -> dict:
    """The deployed endpoint, through its public address, agrees with batch transform.

    The pool serialises each deployment task, not a run's deploy-then-smoke-test: runs of
    several dates (a backfill) may deploy a newer model between the two. Then this run's
    model no longer takes traffic, and the test is skipped, never failed (its model passed
    the same check before it took traffic: ``DEPLOY_ENDPOINT``'s ``check``).
    """

    def skip_if_replaced(when: str) -> None:
        newer = _replaced_by(spec, env, endpoint)
        if newer is not None:
            raise SkipDeployment(
                f"smoke test not run: {when} the endpoint {endpoint['endpoint_name']} serves version {newer['version']} (ds={newer['ds']}, "
                f"config {newer['endpoint_config']}) instead of this run's {endpoint['endpoint_config']}; this run's model was checked before it took traffic"
            )

    skip_if_replaced("since this run deployed,")
    try:
        rows = check_agreement(spec, env, run, client, output_uris)
    except (SmokeTestFailed, SmokeTestUnanswered):
        skip_if_replaced("while the smoke test ran,")
        raise
    log.info("smoke test: %d rows, endpoint %s agrees with batch transform", rows, endpoint["endpoint_name"])
    return {"rows": rows, "agree": True}


def package_request(spec: PipelineSpec, env: Environment, run: Run, chosen: dict, evaluation: dict, code: dict) -> dict:
    return jr.model_package(
        spec,
        env,
        run,
        chosen["model_data"],
        code["sourcedir_uri"],
        evaluation["version"],
        evaluation["decision"],
        training_job=chosen["job_name"],
        commit=registry.git_commit(),
    )


def package_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
    """The registered package as the registry describes it: its ARN, version and approval (what the deployment reads)."""
    return {
        "model_package_group": describe["ModelPackageGroupName"],
        "model_package_arn": describe["ModelPackageArn"],
        "model_package_version": describe["ModelPackageVersion"],
        "approval": describe["ModelApprovalStatus"],
    }


REGISTER_MODEL_VERSION = Step("register_model_version", package_request, package_result)
