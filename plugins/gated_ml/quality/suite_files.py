"""The gate suites as files in the GX project: ``great_expectations/expectations/<pipeline>.<gate>.json``.

The files are what the gates run: review them like code. ``make gx-suites`` writes them
from the specs; a test keeps the committed files equal to what the specs generate. A
pipeline whose files are not written yet runs the suites its spec generates.
"""

from __future__ import annotations

import json
from pathlib import Path

from gated_ml.quality import suites
from gated_ml.spec import PROJECT_ROOT, PipelineSpec

GX_DIR = PROJECT_ROOT / "great_expectations"


def suite_path(pipeline: str, gate: str) -> Path:
    return GX_DIR / "expectations" / f"{pipeline}.{gate}.json"


def render(spec: PipelineSpec, gate: str) -> str:
    return json.dumps(suites.suite(spec, gate), indent=2) + "\n"


def load(spec: PipelineSpec, gate: str) -> list[dict]:
    path = suite_path(spec.name, gate)
    document = json.loads(path.read_text()) if path.exists() else suites.suite(spec, gate)
    return document["expectations"]


def export(spec: PipelineSpec) -> list[Path]:
    written = []
    for gate in suites.GATES:
        path = suite_path(spec.name, gate)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(spec, gate))
        written.append(path)
    return written
