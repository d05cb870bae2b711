"""The targets the pipeline runs on: ``local`` (default) and ``aws`` (also against an AWS emulator).

:func:`configured` returns the one chosen by ``[gated_ml] target``; the DAG factory, the
evaluation operator and the command line ask it, and nothing else does.
"""

from __future__ import annotations

from gated_ml import settings
from gated_ml.targets.base import VERBS, Target

__all__ = ["VERBS", "Target", "configured"]


def configured() -> Target:
    if settings.target() == "aws":
        from gated_ml.targets.aws import AwsTarget

        return AwsTarget()
    from gated_ml.targets.local import LocalTarget

    return LocalTarget()
