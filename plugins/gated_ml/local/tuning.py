"""``CreateHyperParameterTuningJob`` on this machine, driven by Optuna.

- ``Bayesian`` -> Optuna's TPE sampler (a sequential model-based optimizer); ``Random`` ->
  its random sampler; both seeded with the request's ``RandomSeed``.
- Ranges keep their types and scaling: ``Logarithmic`` samples on a log scale,
  ``ReverseLogarithmic`` samples ``1 - x`` on a log scale (for values close to 1), ``Auto``
  and ``Linear`` sample linearly.
- ``MaxNumberOfTrainingJobs`` trials, in rounds of ``MaxParallelTrainingJobs``; every
  trial is a real training job (see :mod:`gated_ml.local.training`), named like
  SageMaker's ``<tuning job>-<NNN>-<8 hex>``.
- The best trial is the one with the best objective metric among completed jobs; a trial
  stopped past its ``MaxRuntimeInSeconds`` counts as ``Stopped`` in ``TrainingJobStatusCounters``.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor

import optuna

from gated_ml.job_requests import final_metric
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.local.training import run_training_job
from gated_ml.validation import validate_request

log = logging.getLogger(__name__)
KIND = "tuning-jobs"


def _suggest(trial: optuna.Trial, ranges: dict) -> dict[str, str]:
    values: dict[str, str] = {}
    for r in ranges.get("IntegerParameterRanges", []):
        lo, hi = int(r["MinValue"]), int(r["MaxValue"])
        values[r["Name"]] = str(trial.suggest_int(r["Name"], lo, hi, log=r.get("ScalingType") == "Logarithmic"))
    for r in ranges.get("ContinuousParameterRanges", []):
        lo, hi, scaling = float(r["MinValue"]), float(r["MaxValue"]), r.get("ScalingType", "Auto")
        if scaling == "ReverseLogarithmic":
            values[r["Name"]] = repr(1.0 - trial.suggest_float(f"1-{r['Name']}", 1.0 - hi, 1.0 - lo, log=True))
        else:
            values[r["Name"]] = repr(trial.suggest_float(r["Name"], lo, hi, log=scaling == "Logarithmic"))
    for r in ranges.get("CategoricalParameterRanges", []):
        values[r["Name"]] = str(trial.suggest_categorical(r["Name"], r["Values"]))
    return values


def _sampler(strategy: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if strategy == "Bayesian":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=3, multivariate=True)
    if strategy == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"tuning strategy {strategy!r} is not supported on the local target; use Bayesian or Random")


def _no_result(describe: dict, metric: str, value: float | None) -> str | None:
    """Why a trial that did not fail has no objective value (it was stopped, or never logged the metric)."""
    if describe["TrainingJobStatus"] == "Stopped":
        return f"stopped: {describe.get('SecondaryStatus')}"
    return None if value is not None else f"no {metric} in the log"


def trial_name(tuning_job: str, number: int, hyperparameters: dict) -> str:
    digest = hashlib.sha1(repr(sorted(hyperparameters.items())).encode()).hexdigest()[:8]
    return f"{tuning_job}-{number:03d}-{digest}"


def run_tuning_job(req: dict, control: ControlPlane | None = None) -> dict:
    """Run every trial and return the ``DescribeHyperParameterTuningJob`` record (with its trials)."""
    validate_request("sagemaker", "CreateHyperParameterTuningJob", req)
    control = control or ControlPlane()
    name = req["HyperParameterTuningJobName"]
    existing = control.reuse(KIND, name, req, "HyperParameterTuningJobStatus")
    if existing is not None:
        return existing

    cfg, definition = req["HyperParameterTuningJobConfig"], req["TrainingJobDefinition"]
    objective = cfg["HyperParameterTuningJobObjective"]
    limits = cfg["ResourceLimits"]
    parallel = max(1, min(limits["MaxParallelTrainingJobs"], limits["MaxNumberOfTrainingJobs"]))
    record = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": control.arn(KIND, name),
        "HyperParameterTuningJobConfig": cfg,
        "HyperParameterTuningJobStatus": "InProgress",
        "CreationTime": now(),
        "Request": req,
    }
    control.put(KIND, name, record)

    base = {k: v for k, v in definition.items() if k not in ("StaticHyperParameters", "DefinitionName", "TuningObjective", "HyperParameterRanges")}

    def run_trial(trial: optuna.Trial, tuned: dict) -> dict:
        job = trial_name(name, trial.number + 1, tuned)
        request = {"TrainingJobName": job, "HyperParameters": {**definition.get("StaticHyperParameters", {}), **tuned}, **base}
        describe = run_training_job(request, control, echo=False)
        value = final_metric(describe, objective["MetricName"])
        log.info("trial %s: %s %s=%s with %s", job, describe["TrainingJobStatus"], objective["MetricName"], value, tuned)
        return {
            "TrainingJobName": job,
            "TrainingJobStatus": describe["TrainingJobStatus"],
            "TunedHyperParameters": tuned,
            "FailureReason": describe.get("FailureReason") or _no_result(describe, objective["MetricName"], value),
            "FinalHyperParameterTuningJobObjectiveMetric": None
            if value is None
            else {"Type": objective["Type"], "MetricName": objective["MetricName"], "Value": value},
            "ModelArtifacts": describe.get("ModelArtifacts"),
        }

    # Ask/tell in rounds of MaxParallelTrainingJobs: the sampler sees the same history in the
    # same order on every run, so a seeded tuning job is reproducible (unlike free-running threads).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=objective["Type"].lower(), sampler=_sampler(cfg["Strategy"], cfg.get("RandomSeed")))
    trials: list[dict] = []
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        while len(trials) < limits["MaxNumberOfTrainingJobs"]:
            asked = [study.ask() for _ in range(min(parallel, limits["MaxNumberOfTrainingJobs"] - len(trials)))]
            # sample here, in trial order: suggesting inside the worker threads would race for the sampler's RNG
            tuned = [_suggest(trial, cfg["ParameterRanges"]) for trial in asked]
            for trial, summary in zip(asked, pool.map(run_trial, asked, tuned), strict=True):
                metric = summary["FinalHyperParameterTuningJobObjectiveMetric"]
                if summary["TrainingJobStatus"] == "Completed" and metric:
                    study.tell(trial, metric["Value"])
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                trials.append(summary)

    done = [t for t in trials if t["TrainingJobStatus"] == "Completed" and t["FinalHyperParameterTuningJobObjectiveMetric"]]
    stopped = sum(t["TrainingJobStatus"] == "Stopped" for t in trials)  # e.g. over MaxRuntimeInSeconds
    # TrainingJobStatusCounters' own keys; a failed trial (its algorithm's error, or no objective metric) is not retryable
    counters = {"Completed": len(done), "InProgress": 0, "RetryableError": 0, "NonRetryableError": len(trials) - len(done) - stopped, "Stopped": stopped}
    record.update(TrainingJobStatusCounters=counters, HyperParameterTuningEndTime=now(), TrainingJobs=sorted(trials, key=lambda t: t["TrainingJobName"]))
    if done:
        pick = max if objective["Type"] == "Maximize" else min
        best = pick(done, key=lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        record.update(HyperParameterTuningJobStatus="Completed", BestTrainingJob=best)
    else:
        reasons = sorted({t["FailureReason"] or "no objective metric" for t in trials})
        record.update(HyperParameterTuningJobStatus="Failed", FailureReason=f"none of the {len(trials)} training jobs completed: {reasons}")
    return control.put(KIND, name, record)
