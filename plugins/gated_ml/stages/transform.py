"""The model and its batch transforms: the test split, the validation split and the champion.

The validation split's predictions choose a binary decision threshold; the champion's
predictions on this run's test split feed the champion/challenger rule. Output objects
follow SageMaker's rule for a CSV transform: ``<S3OutputPath>/<input file name>.out``.
"""

from __future__ import annotations

import logging

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.job_requests import Environment, Run
from gated_ml.spec import PipelineSpec
from gated_ml.steps import Step

log = logging.getLogger(__name__)


def model_request(spec: PipelineSpec, env: Environment, run: Run, chosen: dict, code: dict) -> dict:
    return jr.model(spec, env, run, chosen["model_data"], code["sourcedir_uri"])


def model_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
    return {"model_name": request["ModelName"]}


CREATE_MODEL = Step("create_model", model_request, model_result)


def output_uris(request: dict) -> list[str]:
    """The objects a completed CSV transform job wrote: one ``<input file>.out`` per input object."""
    inputs = storage.list_uris(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    out = request["TransformOutput"]["S3OutputPath"].rstrip("/")
    return [f"{out}/{u.rsplit('/', 1)[-1]}.out" for u in inputs]


def _transform(purpose: str) -> Step:
    def request(spec: PipelineSpec, env: Environment, run: Run, model: dict) -> dict:
        return jr.transform_job(spec, env, run, model["model_name"], purpose)

    def result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
        return {"job_name": request["TransformJobName"], "output_uris": output_uris(request)}

    return Step("transform", request, result)


def champion_request(spec: PipelineSpec, env: Environment, run: Run, model: dict) -> dict | None:
    """The serving model on this run's test split, or ``None`` when no other model serves."""
    from gated_ml.evaluation import registry

    champ = registry.champion(spec, env)
    if champ is None or champ["model_name"] == model["model_name"]:
        log.info("no other model serves %s: nothing to compare with", spec.name)
        return None
    return jr.transform_job(spec, env, run, champ["model_name"], "champion")


def champion_result(spec: PipelineSpec, env: Environment, run: Run, request: dict, describe: dict | None, **inputs) -> dict:
    from gated_ml.evaluation import registry

    champ = next(v for v in registry.versions(spec, env) if v["model_name"] == request["ModelName"])  # the model transformed
    out = {"job_name": request["TransformJobName"], "output_uris": output_uris(request)}
    return {**out, "version": champ["version"], "threshold": champ.get("threshold"), "model_name": champ["model_name"]}


TRANSFORM_TEST = _transform("test")
TRANSFORM_VALIDATION = _transform("validation")
TRANSFORM_CHAMPION = Step("transform", champion_request, champion_result, optional=True)
