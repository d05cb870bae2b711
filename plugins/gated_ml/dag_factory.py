"""One Airflow DAG per pipeline spec.

Parse-time work is limited to reading the spec: no AWS, SDK, pandas or GX import, no
clock or uuid in names. Every request is built inside its task, from the spec and the
run (logical date, try number). A gate or model-gate failure fails its task at once
(no retry: the data will not change by retrying) and leaves everything downstream unrun.
"""

from __future__ import annotations

import datetime as dt
import functools
import textwrap

from airflow.sdk import DAG, TaskGroup, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from gated_ml import settings
from gated_ml.spec import LOWER_IS_BETTER, PipelineSpec


def _run():
    from gated_ml.job_requests import Run

    return Run.from_context(get_current_context())


def _s():
    """The stage functions, imported when a task runs (they pull in botocore and friends)."""
    from gated_ml import stages

    return stages


def _fail_fast(fn):
    """Turn data and model-quality failures into ``AirflowFailException`` (not retried)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from gated_ml.local.glue import GlueJobError
        from gated_ml.quality.checkpoint import GateFailed
        from gated_ml.quality.suite_files import StaleSuite
        from gated_ml.stages import ModelGateFailed, SkipDeployment, StageError

        try:
            return fn(*args, **kwargs)
        except (GateFailed, ModelGateFailed, StageError, StaleSuite) as e:
            raise AirflowFailException(str(e)) from None
        except SkipDeployment as e:
            raise AirflowSkipException(str(e)) from None
        except GlueJobError as e:
            if not e.retryable:
                raise AirflowFailException(str(e)) from None
            raise

    return wrapper


def _doc(spec: PipelineSpec) -> str:
    thresholds = ", ".join(f"{k} {'≤' if k in LOWER_IS_BETTER else '≥'} {v}" for k, v in spec.evaluation.thresholds.items()) or "none"
    return textwrap.dedent(
        f"""
        # {spec.name}

        {spec.description.strip()}

        **Problem:** {spec.problem_type}, target `{spec.target.column}`.
        **Spec:** `include/pipelines/{spec.name}.yaml`. **Target:** `{settings.target()}`.

        Stages: land → landing gate (schema, parseability, duplicates) → Glue ETL →
        curated gate (nulls, outliers, class balance, drift) → split → splits gate (sizes,
        stratification, leakage) → train + tune ({spec.tuning.strategy}, {spec.tuning.max_jobs}
        jobs, objective `{spec.tuning.objective_metric}`) → model → transform input gate →
        batch transform → predictions gate → evaluate (model gate: {thresholds}) → deploy
        endpoint → smoke test.

        A failed gate fails its task with the column, figure and threshold, quarantines the
        batch under `quarantine/ds=…/` and leaves everything downstream unrun. Gate results
        are under `quality/ds=…/`, the evaluation report under `evaluation/ds=…/`.
        """
    )


def _aws_waiting(spec: PipelineSpec) -> dict:
    """Waiting settings of the SageMaker operators: deferrable by default, limits sized for long jobs."""
    return {
        "aws_conn_id": settings.aws_conn_id(),
        "wait_for_completion": True,
        "deferrable": settings.deferrable(),
        "check_interval": settings.poll_seconds(),
        "max_ingestion_time": spec.training.max_runtime_seconds * max(1, spec.tuning.max_jobs // spec.tuning.max_parallel + 1),
        "do_xcom_push": False,  # whole Describe* answers stay out of XCom; a slim task reads what is needed
    }


def build_dag(spec: PipelineSpec) -> DAG:
    target = settings.target()
    aws = target == "aws"

    def env():
        return _s().environment()

    with DAG(
        dag_id=spec.dag_id,
        description=spec.description.strip().split("\n")[0][:200],
        schedule=spec.schedule,
        start_date=dt.datetime.combine(spec.start_date, dt.time(), tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        doc_md=_doc(spec),
        tags=["gated-ml", spec.problem_type, *spec.tags],
        default_args={"owner": spec.owner, "retries": spec.retries, "retry_delay": dt.timedelta(minutes=1)},
    ) as dag:
        @task(task_id="package_code")
        def package_code():
            return _s().package_code(spec, env())

        code = package_code()

        with TaskGroup("ingest", tooltip="land the raw batch and check it can be read"):

            @task(task_id="land_raw_batch")
            @_fail_fast
            def land():
                return _s().land(spec, env(), _run())

            @task(task_id="landing_gate")
            @_fail_fast
            def landing_gate(landed: dict):
                return _s().gate_landing(spec, env(), _run(), landed["raw_uri"])

            landed = land()
            landing_ok = landing_gate(landed)

        with TaskGroup("etl", tooltip="Glue ETL to curated Parquet, then the curated gate"):

            @task(task_id="curated_gate")
            @_fail_fast
            def curated_gate():
                return _s().gate_curated(spec, env(), _run())

            if aws:
                from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

                @task(task_id="glue_request", multiple_outputs=True)
                def glue_request(code: dict):
                    from gated_ml import job_requests as jr

                    e, run = env(), _run()
                    create, start = jr.glue_create_job(spec, e, code["glue_script_uri"], extra_py_files=[code["raw_formats_uri"]]), jr.glue_job_run(spec, e, run)
                    kwargs = {k: create[k] for k in ("GlueVersion", "WorkerType", "NumberOfWorkers", "Timeout", "DefaultArguments", "Tags")}
                    return {"script_location": create["Command"]["ScriptLocation"], "iam_role_arn": create["Role"], "create_job_kwargs": kwargs, "script_args": start["Arguments"]}

                req = glue_request(code)
                landing_ok >> req
                curated = GlueJobOperator(
                    task_id="glue_etl", job_name=f"{spec.slug}-etl", script_location=req["script_location"], iam_role_arn=req["iam_role_arn"],
                    create_job_kwargs=req["create_job_kwargs"], script_args=req["script_args"], update_config=True,
                    wait_for_completion=True, deferrable=settings.deferrable(), job_poll_interval=settings.poll_seconds(),
                    aws_conn_id=settings.aws_conn_id(),
                )
            else:

                @task(task_id="glue_etl")
                @_fail_fast
                def glue_etl(code: dict):
                    return _s().etl(spec, env(), _run(), code["glue_script_uri"])

                curated = glue_etl(code)
                landing_ok >> curated
            curated_ok = curated_gate()
            curated >> curated_ok
            if aws:  # register the accepted partition in the Glue Data Catalog
                from airflow.providers.amazon.aws.operators.glue_catalog import GlueCatalogCreateDatabaseOperator

                from gated_ml.aws_operators import CatalogPartitionOperator, CatalogTableOperator

                @task(task_id="catalog_request", multiple_outputs=True)
                def catalog_request():
                    from gated_ml import job_requests as jr

                    e = env()
                    return {"table": jr.catalog_table(spec, e)["TableInput"], "partition": jr.catalog_partition(spec, e, _run())["PartitionInput"]}

                cat = catalog_request()
                curated_ok >> cat
                conn = {"aws_conn_id": settings.aws_conn_id()}
                database = GlueCatalogCreateDatabaseOperator(task_id="catalog_database", database_name="gated_ml", if_exists="skip", **conn)
                table = CatalogTableOperator(task_id="catalog_table", database_name="gated_ml", table_name=spec.name, table_input=cat["table"], if_exists="skip", **conn)
                partition = CatalogPartitionOperator(task_id="catalog_partition", database_name="gated_ml", table_name=spec.name, partition_input=cat["partition"], if_exists="skip", **conn)
                cat >> database >> table >> partition

        with TaskGroup("features", tooltip="stratified split and the splits gate"):

            @task(task_id="split")
            @_fail_fast
            def split():
                return _s().split(spec, env(), _run())

            @task(task_id="splits_gate")
            @_fail_fast
            def splits_gate():
                return _s().gate_splits(spec, env(), _run())

            splits = split()
            curated_ok >> splits
            splits_ok = splits_gate()
            splits >> splits_ok

        with TaskGroup("training", tooltip="SageMaker training and automatic model tuning"):

            @task(task_id="train")
            @_fail_fast
            def train(code: dict):
                return _s().train(spec, env(), _run(), code["sourcedir_uri"])

            @task(task_id="tune")
            @_fail_fast
            def tune(code: dict):
                return _s().tune(spec, env(), _run(), code["sourcedir_uri"])

            @task(task_id="select_model")
            @_fail_fast
            def select_model(trained: dict, tuned: dict):
                return _s().select_model(spec, trained, tuned)

            if aws:
                from gated_ml.aws_operators import ReattachingTrainingOperator, ReattachingTransformOperator, ReattachingTuningOperator

                @task(task_id="training_request")
                def training_request(code: dict):
                    from gated_ml import aws as a
                    from gated_ml import job_requests as jr

                    return jr.training_job(spec, env(), a.attempt_run(spec, _run(), "train", "train"), code["sourcedir_uri"])

                @task(task_id="tuning_request")
                def tuning_request(code: dict):
                    from gated_ml import aws as a
                    from gated_ml import job_requests as jr
                    from gated_ml.naming import MAX_TUNING_LEN

                    return jr.tuning_job(spec, env(), a.attempt_run(spec, _run(), "tune", "tune", MAX_TUNING_LEN), code["sourcedir_uri"])

                @task(task_id="training_result")
                @_fail_fast
                def training_result(request: dict):
                    from gated_ml import aws as a

                    return a.training_result(spec, request["TrainingJobName"])

                @task(task_id="tuning_result")
                @_fail_fast
                def tuning_result(request: dict):
                    from gated_ml import aws as a

                    return a.tuning_result(spec, request)

                train_req, tune_req = training_request(code), tuning_request(code)
                splits_ok >> [train_req, tune_req]
                train_job = ReattachingTrainingOperator(task_id="train", config=train_req, action_if_job_exists="fail", print_log=False, **_aws_waiting(spec))
                tune_job = ReattachingTuningOperator(task_id="tune", config=tune_req, **_aws_waiting(spec))
                trained, tuned = training_result(train_req), tuning_result(tune_req)
                train_job >> trained
                tune_job >> tuned
            else:
                trained, tuned = train(code), tune(code)
                splits_ok >> [trained, tuned]
            chosen = select_model(trained, tuned)

        with TaskGroup("batch_transform", tooltip="input gate, model, batch transform of the test split, predictions gate"):

            @task(task_id="transform_input_gate")
            @_fail_fast
            def transform_input_gate():
                return _s().gate_transform_input(spec, env(), _run())

            @task(task_id="create_model")
            @_fail_fast
            def create_model(chosen: dict, code: dict):
                return _s().create_model(spec, env(), _run(), chosen["model_data"], code["sourcedir_uri"])

            @task(task_id="transform")
            @_fail_fast
            def transform(model: dict):
                return _s().batch_transform(spec, env(), _run(), model["model_name"], "test")

            @task(task_id="transform_validation")
            @_fail_fast
            def transform_validation(model: dict):
                return _s().batch_transform(spec, env(), _run(), model["model_name"], "validation")

            @task(task_id="transform_champion")
            @_fail_fast
            def transform_champion(model: dict):
                return _s().champion_transform(spec, env(), _run(), model["model_name"])

            @task(task_id="predictions_gate")
            @_fail_fast
            def predictions_gate(transformed: dict):
                return _s().gate_predictions(spec, env(), _run(), transformed["output_uris"])

            input_ok = transform_input_gate()
            splits_ok >> input_ok
            if aws:
                from airflow.providers.amazon.aws.operators.sagemaker import SageMakerModelOperator

                @task(task_id="model_request")
                def model_request(chosen: dict, code: dict):
                    from gated_ml import job_requests as jr

                    return jr.model(spec, env(), _run(), chosen["model_data"], code["sourcedir_uri"])

                @task(task_id="model_result")
                def model_result(request: dict):
                    return {"model_name": request["ModelName"]}

                @task
                def transform_request(model: dict, purpose: str):
                    from gated_ml import job_requests as jr
                    from gated_ml.evaluation import registry

                    if purpose == "champion":
                        champ = registry.champion(spec, env())
                        if champ is None or champ["model_name"] == model["model_name"]:
                            raise AirflowSkipException("no other model serves: nothing to compare with")
                        model = {"model_name": champ["model_name"]}
                    from gated_ml import aws as a

                    stage = jr.TRANSFORMS[purpose][0]
                    return {"Transform": jr.transform_job(spec, env(), a.attempt_run(spec, _run(), stage, "transform"), model["model_name"], purpose)}

                @task(trigger_rule="none_failed")
                def transform_result(request: dict | None, purpose: str):
                    from gated_ml import aws as a
                    from gated_ml.evaluation import registry

                    if request is None:
                        return None
                    out = a.transform_result(request["Transform"])
                    if purpose == "champion":
                        champ = registry.champion(spec, env())
                        out.update(version=champ["version"], threshold=champ.get("threshold"), model_name=champ["model_name"])
                    return out

                model_req = model_request(chosen, code)
                model_op = SageMakerModelOperator(task_id="create_model", config=model_req, aws_conn_id=settings.aws_conn_id(), do_xcom_push=False)
                model = model_result(model_req)
                model_op >> model
                results = {}
                for purpose, task_id in (("test", "transform"), ("validation", "transform_validation"), ("champion", "transform_champion")):
                    req = transform_request.override(task_id=f"{task_id}_request")(model, purpose)
                    job = ReattachingTransformOperator(task_id=task_id, config=req, action_if_job_exists="fail", check_if_model_exists=False, **_aws_waiting(spec))
                    results[purpose] = transform_result.override(task_id=f"{task_id}_result")(req, purpose)
                    job >> results[purpose]
                    if purpose == "test":
                        input_ok >> req
                transformed, validated, champion = results["test"], results["validation"], results["champion"]
            else:
                model = create_model(chosen, code)
                transformed = transform(model)
                input_ok >> transformed
                validated = transform_validation(model)
                champion = transform_champion(model)
            predictions_ok = predictions_gate(transformed)

        from gated_ml.evaluation.operator import EvaluateModelOperator

        evaluation = EvaluateModelOperator(
            task_id="evaluate", pipeline=spec.name, test_output=transformed, validation_output=validated,
            champion_output=champion, chosen=chosen, model=model, code=code,
        )
        predictions_ok >> evaluation

        with TaskGroup("deployment", tooltip="real-time endpoint (create, or update without downtime) and its smoke test"):

            @task(task_id="deploy_endpoint")
            @_fail_fast
            def deploy(model: dict, evaluation: dict, transformed: dict):
                return _s().deploy(spec, env(), _run(), model["model_name"], evaluation, transformed)

            @task(task_id="smoke_test_endpoint")
            @_fail_fast
            def smoke_test(endpoint: dict, transformed: dict):
                return _s().smoke_test(spec, env(), _run(), endpoint, transformed["output_uris"])

            if aws:
                from airflow.providers.amazon.aws.operators.sagemaker import (
                    SageMakerEndpointOperator,
                    SageMakerRegisterModelVersionOperator,
                )

                @task(task_id="endpoint_request")
                @_fail_fast
                def endpoint_request(model: dict, evaluation: dict):
                    from gated_ml import job_requests as jr

                    e, run = env(), _run()
                    _s().check_deployable(spec, e, run, evaluation)
                    epc = jr.endpoint_config(spec, run, model["model_name"])
                    return {"EndpointConfig": epc, "Endpoint": jr.endpoint(spec, epc["EndpointConfigName"])}

                @task(task_id="endpoint_result")
                def endpoint_result(request: dict, evaluation: dict):
                    from gated_ml.evaluation import registry

                    registry.crown(spec, env(), evaluation["version"], request["EndpointConfig"]["EndpointConfigName"])
                    return {"endpoint_name": request["Endpoint"]["EndpointName"], "endpoint_config": request["EndpointConfig"]["EndpointConfigName"], "url": None, "version": evaluation["version"]}

                from airflow.providers.amazon.aws.utils.sagemaker import ApprovalStatus

                @task(task_id="registration_request", multiple_outputs=True)
                def registration_request(chosen: dict, evaluation: dict):
                    return {"image_uri": env().image_uri, "model_url": chosen["model_data"], "desc": f"registry version {evaluation['version']}, ds={_run().ds}"}

                ep_req = endpoint_request(model, evaluation.output)
                # "create" falls back to an update (to the new endpoint config) when the endpoint exists
                ep_op = SageMakerEndpointOperator(task_id="deploy_endpoint", config=ep_req, operation="create", **_aws_waiting(spec))
                endpoint = endpoint_result(ep_req, evaluation.output)
                ep_op >> endpoint
                reg = registration_request(chosen, evaluation.output)
                SageMakerRegisterModelVersionOperator(
                    task_id="register_model_version", image_uri=reg["image_uri"], model_url=reg["model_url"],
                    package_group_name=spec.slug, package_desc=reg["desc"], aws_conn_id=settings.aws_conn_id(),
                    model_approval=ApprovalStatus.PENDING_MANUAL_APPROVAL if spec.evaluation.manual_approval else ApprovalStatus.APPROVED,
                )
            else:
                endpoint = deploy(model, evaluation.output, transformed)
            smoke_test(endpoint, transformed)

    return dag
