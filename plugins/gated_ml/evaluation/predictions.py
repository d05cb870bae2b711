"""Reading batch-transform output: ``label,prediction`` lines as a frame.

The predictions gate and the evaluation both read predictions through this one reader,
so they see the same rows and the same decoded labels.
"""

from __future__ import annotations

import io

from gated_ml import storage
from gated_ml.spec import PipelineSpec


def read_predictions(spec: PipelineSpec, output_uris: list[str]):
    """Transform output ``label,prediction`` as a frame; for classification also ``predicted_label``."""
    import pandas as pd

    frames = [pd.read_csv(io.StringIO(storage.read_text(u)), header=None, names=["label", "prediction"], dtype={"label": str}) for u in output_uris]
    frame = pd.concat(frames, ignore_index=True)
    if spec.problem_type == "binary_classification":
        negative, positive = spec.label_classes
        scores = pd.to_numeric(frame["prediction"], errors="coerce")
        frame["predicted_label"] = scores.ge(spec.evaluation.decision_threshold).map({True: positive, False: negative}).where(scores.notna())
    elif spec.is_classification:
        frame["predicted_label"] = frame["prediction"]
    return frame
