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

    def fit(self, frame: pd.DataFrame) -> "Preprocessor":
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

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        if self.state is None:
            raise RuntimeError("Preprocessor is not fitted")
        out = np.empty((len(frame), len(self.state["columns"])), dtype=np.float32)
        for j, col in enumerate(self.state["columns"]):
            if col in self.state["numeric"]:
                p = self.state["numeric"][col]
                values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
                values = np.where(np.isnan(values), p["median"], values)
                out[:, j] = (values - p["mean"]) / p["scale"]
            else:
                index = {v: float(i) for i, v in enumerate(self.state["categorical"][col])}
                out[:, j] = frame[col].astype(str).map(index).astype(float).to_numpy()
        return out

    def to_json(self) -> str:
        return json.dumps(self.state, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Preprocessor":
        state = json.loads(text)
        pre = cls(numeric=state["numeric"], categorical=state["categorical"])
        pre.state = state
        return pre
