"""Feature preprocessing fitted on the training split and shipped inside the model artifact.

Numeric columns: missing values imputed with the training median, then standardised
with the training mean and standard deviation. String columns: encoded as the index
of their category (the spec's order for ordinal columns, else the training categories
sorted); an unseen category becomes missing, which XGBoost handles natively.

The fitted state is plain JSON (no pickle), so an artifact can be read, diffed and
loaded without executing anything. Only numpy and pandas are used: both are in the
SageMaker XGBoost container.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


class Preprocessor:
    def __init__(self, numeric=(), categorical=None):
        self.numeric = list(numeric)
        self.categorical = dict(categorical or {})  # column -> ordered categories (empty: learn them)
        self.state = None

    @property
    def columns(self):
        return self.state["columns"] if self.state else self.numeric + list(self.categorical)

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        numeric = {}
        for col in self.numeric:
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            median = float(np.nanmedian(values)) if np.isfinite(values).any() else 0.0
            filled = np.where(np.isnan(values), median, values)
            std = float(filled.std())
            numeric[col] = {"median": median, "mean": float(filled.mean()), "scale": std if std > 0 else 1.0}
        categorical = {}
        for col, cats in self.categorical.items():
            learned = sorted(frame[col].dropna().astype(str).unique())
            categorical[col] = list(cats) if cats else learned
        order = [c for c in frame.columns if c in numeric or c in categorical]
        self.state = {"columns": order, "numeric": numeric, "categorical": categorical}
        return self

    def transform(self, frame) -> np.ndarray:
        """Features as a float matrix; ``frame`` is a DataFrame or a mapping of column -> values.

        A value that is neither a number nor missing raises ``ValueError`` naming the
        column and the record (the endpoint answers it with a 400).
        """
        if self.state is None:
            raise RuntimeError("Preprocessor is not fitted")
        columns = self.state["columns"]
        n = len(frame[columns[0]]) if columns else 0
        out = np.empty((n, len(columns)), dtype=np.float32)
        for j, col in enumerate(columns):
            raw = np.asarray(frame[col], dtype=object)
            if col in self.state["numeric"]:
                p = self.state["numeric"][col]
                values = _to_float(raw, col)
                values = np.where(np.isnan(values), p["median"], values)
                out[:, j] = (values - p["mean"]) / p["scale"]
            else:
                index = {v: float(i) for i, v in enumerate(self.state["categorical"][col])}
                out[:, j] = [index.get(str(v), np.nan) for v in raw]
        return out

    def to_json(self) -> str:
        return json.dumps(self.state, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        state = json.loads(text)
        pre = cls(numeric=state["numeric"], categorical=state["categorical"])
        pre.state = state
        return pre


def _to_float(raw: np.ndarray, column: str) -> np.ndarray:
    """Numbers as floats, missing ('' or None) as NaN; anything else is an error."""
    try:
        return raw.astype(float)  # the fast path: every value a number or a numeric string
    except (TypeError, ValueError):
        pass
    missing = np.array([v is None or (isinstance(v, str) and v.strip() in ("", "?")) for v in raw])
    values = pd.to_numeric(pd.Series(np.where(missing, np.nan, raw)), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & ~missing & ~pd.isna(raw))
    if len(bad):
        raise ValueError(f"column {column!r} must be numeric; record {int(bad[0])} has {raw[bad[0]]!r}")
    return values
