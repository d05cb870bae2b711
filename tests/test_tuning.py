"""Tuning requests run as real training jobs chosen by an Optuna sampler, within the ranges."""

import math

import pytest

from gated_ml import job_requests as jr
from gated_ml.local.control_plane import ControlPlane
from gated_ml.local.tuning import run_tuning_job
from test_training_contract import _seed_features, _upload_code

# The objective peaks at eta = 0.05 (on a log scale) and depth = 4.
PROBE = """
import argparse, math
p = argparse.ArgumentParser()
p.add_argument("--eta", type=float); p.add_argument("--max_depth", type=int); p.add_argument("--booster")
a, _ = p.parse_known_args()
if a.booster == "broken":
    raise SystemExit("booster 'broken' is not supported")
if a.booster == "slow":
    import time; time.sleep(30)
print(f"validation:score={-(math.log10(a.eta) - math.log10(0.05)) ** 2 - 0.1 * (a.max_depth - 4) ** 2}")
"""


def _request(spec, env, run, code, strategy, jobs, parallel, categorical=("gbtree",)):
    req = jr.tuning_job(spec, env, run, code)
    cfg = req["HyperParameterTuningJobConfig"]
    cfg.update(Strategy=strategy, ResourceLimits={"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel})
    cfg["HyperParameterTuningJobObjective"] = {"Type": "Maximize", "MetricName": "validation:score"}
    cfg["ParameterRanges"] = {
        "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "8", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "booster", "Values": list(categorical)}],
    }
    req["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "validation:score", "Regex": r"validation:score=([-0-9.e]+)"}]
    return req


@pytest.fixture
def code(lake, spec, env, run):
    _seed_features(spec, env, run)
    return _upload_code(spec, env, {"train.py": PROBE})


def test_bayesian_tuning_runs_real_jobs_within_ranges_and_picks_the_best(spec, env, run, code):
    describe = run_tuning_job(_request(spec, env, run, code, "Bayesian", jobs=12, parallel=2))
    trials = describe["TrainingJobs"]
    assert describe["HyperParameterTuningJobStatus"] == "Completed"
    assert len(trials) == 12
    assert describe["TrainingJobStatusCounters"] == {"Completed": 12, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    control = ControlPlane()
    for t in trials:
        job = control.get("training-jobs", t["TrainingJobName"])  # each trial is a real training job
        assert job["TrainingJobStatus"] == "Completed" and job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
        assert 0.0001 <= float(t["TunedHyperParameters"]["eta"]) <= 1
        assert t["TunedHyperParameters"]["max_depth"] in {str(i) for i in range(1, 9)}
        assert t["TrainingJobName"].startswith(describe["HyperParameterTuningJobName"] + "-") and len(t["TrainingJobName"]) <= 63
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert describe["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)


def test_logarithmic_scaling_samples_orders_of_magnitude(spec, env, run, code):
    describe = run_tuning_job(_request(spec, env, run, code, "Random", jobs=16, parallel=2))
    etas = sorted(float(t["TunedHyperParameters"]["eta"]) for t in describe["TrainingJobs"])
    decades = {math.floor(math.log10(e)) for e in etas}
    assert len(decades) >= 3  # a linear draw on [0.0001, 1] would put nearly all of them in [0.1, 1]


def test_failed_trials_are_counted_and_all_failed_fails_the_job(spec, env, run, code):
    describe = run_tuning_job(_request(spec, env, run, code, "Random", jobs=3, parallel=1, categorical=("broken",)))
    assert describe["HyperParameterTuningJobStatus"] == "Failed"
    assert describe["TrainingJobStatusCounters"] == {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 3, "Stopped": 0}
    # the probe writes no failure file: the training toolkit's own names the command it ran
    assert "ExecuteUserScriptError" in describe["FailureReason"] and "--booster broken" in describe["FailureReason"]


def test_a_trial_over_its_max_runtime_counts_as_stopped(spec, env, run, code):
    req = _request(spec, env, run, code, "Random", jobs=2, parallel=2, categorical=("slow",))
    req["TrainingJobDefinition"]["StoppingCondition"]["MaxRuntimeInSeconds"] = 2
    describe = run_tuning_job(req)
    assert describe["TrainingJobStatusCounters"] == {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 2}
    assert {t["TrainingJobStatus"] for t in describe["TrainingJobs"]} == {"Stopped"}
    assert describe["HyperParameterTuningJobStatus"] == "Failed" and "MaxRuntimeExceeded" in describe["FailureReason"]
    assert "BestTrainingJob" not in describe


def test_seeded_tuning_is_reproducible(spec, env, run, code):
    first = _request(spec, env, run, code, "Bayesian", jobs=6, parallel=2)
    second = dict(first, HyperParameterTuningJobName=first["HyperParameterTuningJobName"][:-1] + "9")
    a, b = run_tuning_job(first), run_tuning_job(second)
    assert [t["TunedHyperParameters"] for t in a["TrainingJobs"]] == [t["TunedHyperParameters"] for t in b["TrainingJobs"]]
    assert a["BestTrainingJob"]["TunedHyperParameters"] == b["BestTrainingJob"]["TunedHyperParameters"]
