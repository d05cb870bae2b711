"""moto's in-memory backends as the emulator reads and changes them, pinned to the one moto version it was written against.

moto keeps every service's state in module-level ``BackendDict`` objects; the emulator's
job runners, extensions and staging work on them directly, from inside the server process
(they are invisible from any other process). What they touch (attribute names, the glue job
run's managed state, the models' ``Completed``-at-creation) is moto 5.2.5's, read from its
source: :func:`require_pinned_moto` refuses any other version rather than misbehave.
"""

from __future__ import annotations

from gated_ml.errors import EmulatorMismatch

MOTO_VERSION = "5.2.5"
ACCOUNT = "123456789012"  # moto's default account
GLUE_JOB_RUN_STATE = "glue::job_run"


def installed_moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def require_pinned_moto(installed: str | None = None) -> None:
    """Refuse to start on a moto other than :data:`MOTO_VERSION` (the emulator patches its internals)."""
    found = installed or installed_moto_version()
    if found != MOTO_VERSION:
        raise EmulatorMismatch(
            f"the AWS emulator is written against moto {MOTO_VERSION} but moto {found} is installed; "
            f"install moto=={MOTO_VERSION} (requirements.lock) or port gated_ml.emulated_aws to {found} and its contract tests"
        )


def sagemaker(region: str):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][region]


def glue(region: str):
    from moto.glue.models import glue_backends

    return glue_backends[ACCOUNT][region]


def s3():
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["global"]


def hold_glue_job_runs() -> None:
    """Glue job runs keep the state the emulator sets (moto's default moves them to SUCCEEDED when read)."""
    from moto.moto_api import state_manager

    state_manager.set_transition(GLUE_JOB_RUN_STATE, {"progression": "manual", "times": 10**12})


def patch_glue_job_run_error_message() -> None:
    """``GetJobRun`` answers the run's ``ErrorMessage`` once the emulator set one (moto never does)."""
    from moto.glue.models import FakeJobRun

    if getattr(FakeJobRun.as_dict, "_gated_ml", False):
        return
    original = FakeJobRun.as_dict

    def as_dict(self):
        out = original(self)
        if getattr(self, "error_message", None):
            out["ErrorMessage"] = self.error_message
        return out

    as_dict._gated_ml = True
    FakeJobRun.as_dict = as_dict


def patch_tuning_describe_omits_unset() -> None:
    """``DescribeHyperParameterTuningJob`` leaves out what is not set yet (``BestTrainingJob`` while trials run), as AWS does."""
    from moto.sagemaker.models import HyperParameterTuningJob

    if getattr(HyperParameterTuningJob.describe, "_gated_ml", False):
        return
    original = HyperParameterTuningJob.describe

    def describe(self):
        return {k: v for k, v in original(self).items() if v is not None and v != ""}

    describe._gated_ml = True
    HyperParameterTuningJob.describe = describe


def prepare() -> None:
    """Everything the emulator changes in moto, once, in its own process (after :func:`require_pinned_moto`)."""
    require_pinned_moto()
    hold_glue_job_runs()
    patch_glue_job_run_error_message()
    patch_tuning_describe_omits_unset()
