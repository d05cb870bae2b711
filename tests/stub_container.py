"""A stub inference entry point in the real local container, for quick serving and transform tests.

Its ``predict_fn`` answers, per record, ``<first field>:<records in the request>`` (so a test
sees how records were batched) plus ``$STUB_SUFFIX`` (so it sees the container's
environment); a record containing ``fail`` raises in ``predict_fn``. ``input_fn`` takes CSV
and JSON, ``output_fn`` answers CSV and JSON; anything else raises, as an entry point does.
"""

from __future__ import annotations

from gated_ml.lake import local_path
from gated_ml.stages.code import _deterministic_tar

PROGRAM = """
import json
import os


def model_fn(model_dir):
    return {"suffix": os.environ.get("STUB_SUFFIX", "")}


def input_fn(body, content_type):
    if content_type not in ("text/csv", "application/json"):
        raise ValueError(f"unsupported content type {content_type!r}")
    text = body.decode() if isinstance(body, bytes) else body
    return text.splitlines()


def predict_fn(records, model):
    if any("fail" in r for r in records):
        raise RuntimeError("stub model: a record asked to fail")
    return [f"{r.split(',')[0]}:{len(records)}{model['suffix']}" for r in records]


def output_fn(predictions, accept):
    if accept == "application/json":
        return json.dumps({"predictions": predictions}), accept
    if accept == "text/csv":
        return "".join(p + "\\n" for p in predictions), accept
    raise ValueError(f"unsupported accept type {accept!r}")
"""


def _tar(uri: str, files: dict[str, str]) -> str:
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_deterministic_tar({name: text.encode() for name, text in files.items()}))
    return uri


def stub_container(program: str = PROGRAM, environment: dict | None = None) -> dict:
    """A ``CreateModel`` ``PrimaryContainer`` serving ``program`` (written into the current lake)."""
    return {
        "Image": "local/stub",
        "ModelDataUrl": _tar("s3://stub/model/model.tar.gz", {"empty.txt": ""}),
        "Environment": {
            "SAGEMAKER_PROGRAM": "stub.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": _tar("s3://stub/code/sourcedir.tar.gz", {"stub.py": program}),
            **(environment or {}),
        },
    }
