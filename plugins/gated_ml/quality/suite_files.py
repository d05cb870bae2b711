"""The gate suites as files in the GX project: ``great_expectations/expectations/<pipeline>.<gate>.json``.

The files are what the gates run: review them like code. ``make gx-suites`` writes them
from the specs; a test keeps the committed files equal to what the specs generate, and a
gate refuses to run a file that its spec no longer generates (a spec edited without
``make gx-suites``). A pipeline whose files are not written yet runs the suites its
spec generates. ``[gated_ml] gx_dir`` moves the GX project (tests use their own).
"""

from __future__ import annotations

import json
from pathlib import Path

from gated_ml import settings
from gated_ml.errors import StaleSuite
from gated_ml.quality import suites
from gated_ml.spec import PROJECT_ROOT, PipelineSpec


def gx_dir() -> Path:
    return Path(settings.get("gx_dir", str(PROJECT_ROOT / "great_expectations")))


def suite_path(pipeline: str, gate: str) -> Path:
    return gx_dir() / "expectations" / f"{pipeline}.{gate}.json"


def render(spec: PipelineSpec, gate: str) -> str:
    return json.dumps(suites.suite(spec, gate), indent=2) + "\n"


def load(spec: PipelineSpec, gate: str) -> list[dict]:
    path = suite_path(spec.name, gate)
    if not path.exists():
        return suites.suite(spec, gate)["expectations"]
    if path.read_text() != render(spec, gate):
        raise StaleSuite(f"{path} is out of date with the spec of {spec.name}: run `make gx-suites` and review the diff")
    return json.loads(path.read_text())["expectations"]


def export(spec: PipelineSpec) -> list[Path]:
    written = []
    for gate in suites.GATES:
        path = suite_path(spec.name, gate)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(spec, gate))
        written.append(path)
    return written
