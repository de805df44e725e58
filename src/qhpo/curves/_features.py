"""Features that predictors read from a partial learning curve.

For a curve prefix ``c_1..c_t`` and hyperparameters ``h`` the feature vector is

    x = [c_1..c_t] (+ [c_2-c_1 .. c_t-c_{t-1}] + [second differences] if differences)
        (+ g(h) if hyperparameters)

where ``g`` takes log10 of every hyperparameter column whose positive values span more
than two decades (learning rate, momentum) and keeps the others. Every feature column is
min-max scaled to [0, 1] with the range seen in ``fit`` (constant columns map to 0), so
that an RBF kernel with a fixed ``gamma`` sees comparable distances whatever the metric.
"""

from __future__ import annotations

import numpy as np


class CurveFeaturizer:
    """Turn curve prefixes (and hyperparameters) into scaled feature vectors.

    Args:
        t: Number of leading epochs used (the decision point).
        differences: Append first and second differences of the prefix (Baker et al.).
        hyperparameters: Append the (log-transformed) numeric hyperparameters.
    """

    def __init__(self, t: int, *, differences: bool = False, hyperparameters: bool = False):
        if int(t) < 1:
            raise ValueError(f"t must be at least 1 epoch, got {t}")
        self.t = int(t)
        self.differences = bool(differences)
        self.hyperparameters = bool(hyperparameters)

    def _raw(self, curves: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        curves = np.asarray(curves, dtype=float)
        if curves.ndim == 1:
            curves = curves[None, :]
        if curves.shape[1] < self.t:
            raise ValueError(f"curves have {curves.shape[1]} epochs, the featurizer needs {self.t}")
        prefix = curves[:, : self.t]
        parts = [prefix]
        if self.differences and self.t >= 2:
            parts.append(np.diff(prefix, n=1, axis=1))
        if self.differences and self.t >= 3:
            parts.append(np.diff(prefix, n=2, axis=1))
        if self.hyperparameters:
            if params is None:
                raise ValueError("hyperparameters=True needs the hyperparameter matrix")
            params = np.asarray(params, dtype=float)
            if params.ndim == 1:
                params = params[None, :]
            parts.append(np.where(self.log_columns_, np.log10(np.abs(params) + 1e-300), params))
        return np.hstack(parts)

    def fit(self, curves: np.ndarray, params: np.ndarray | None = None) -> "CurveFeaturizer":
        if self.hyperparameters:
            p = np.asarray(params, dtype=float)
            if p.ndim == 1:
                p = p[None, :]
            positive = np.all(p > 0, axis=0)
            span = np.where(positive, np.max(p, axis=0) / np.where(positive, np.min(p, axis=0), 1.0), 1.0)
            self.log_columns_ = positive & (span > 100.0)
        raw = self._raw(curves, params)
        self.min_ = raw.min(axis=0)
        scale = raw.max(axis=0) - self.min_
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, curves: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        if not hasattr(self, "min_"):
            raise RuntimeError("CurveFeaturizer.transform called before fit")
        return (self._raw(curves, params) - self.min_) / self.scale_

    def fit_transform(self, curves: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        return self.fit(curves, params).transform(curves, params)
