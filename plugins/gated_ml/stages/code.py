"""The code stage: the entry points packed into the lake under ``code/<content hash>/``.

The same code always lands at the same URI, so a job's request names exactly the code it
runs and the registry can record it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.job_requests import Environment
from gated_ml.spec import PROJECT_ROOT, PipelineSpec

GLUE_DIR = PROJECT_ROOT / "include" / "glue"
SAGEMAKER_DIR = PROJECT_ROOT / "include" / "sagemaker"
RAW_FORMATS = PROJECT_ROOT / "plugins" / "gated_ml" / "raw_formats.py"  # the Glue job's --extra-py-files


def _deterministic_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def package_code(spec: PipelineSpec, env: Environment) -> dict:
    """Upload the entry points to ``code/<content hash>/``: the same code always has the same URI."""
    sources = {p.name: p.read_bytes() for p in sorted(SAGEMAKER_DIR.glob("*.py"))}
    glue_script, raw_formats = (GLUE_DIR / "etl.py").read_bytes(), RAW_FORMATS.read_bytes()
    digest = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(sources.items())) + glue_script + raw_formats).hexdigest()[:12]
    prefix = jr.locations(spec, env).code(digest)
    objects = {prefix + "sourcedir.tar.gz": _deterministic_tar(sources), prefix + "etl.py": glue_script, prefix + "raw_formats.py": raw_formats}
    for uri, body in objects.items():
        if not storage.exists(uri):
            storage.write(uri, body)
    return {"digest": digest, "sourcedir_uri": prefix + "sourcedir.tar.gz", "glue_script_uri": prefix + "etl.py", "raw_formats_uri": prefix + "raw_formats.py"}
