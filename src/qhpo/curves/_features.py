"""Features that predictors read from a partial learning curve.

For a curve prefix ``c_1..c_t`` and hyperparameters ``h`` the feature vector is

    x = [c_1..c_t] (+ [c_2-c_1 .. c_t-c_{t-1}] + [second differences] if differences)
        (+ g(h) if hyperparameters)

where ``g`` takes log10 of every hyperparameter column whose positive values span more
than two decades (learning rate, momentum) and keeps the others. Hyperparameters reach
the featurizer as a float matrix; :class:`HyperparameterEncoder` builds one from trials'
hyperparameter dicts, categorical values (strings) one-hot encoded. Every feature column is
min-max scaled to [0, 1] with the range seen in ``fit`` (constant columns map to 0), so
that an RBF kernel with a fixed ``gamma`` sees comparable distances whatever the metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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

    def fit(self, curves: np.ndarray, params: np.ndarray | None = None) -> CurveFeaturizer:
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


class HyperparameterEncoder:
    """Hyperparameter dicts -> a float matrix that :class:`CurveFeaturizer` reads.

    ``fit`` learns the columns from the rows it sees: a hyperparameter whose values are
    all numbers (``bool`` counts as 0/1) becomes one column as it is; a categorical one
    (any string value) becomes one 0/1 column per level that occurs in at least
    ``min_count`` of the fitted rows, in sorted order. Levels seen fewer times, or first
    seen in ``transform``, set no column: a level met once says nothing a model can learn
    from (a table in which every architecture string is unique yields no column for it).
    Columns keep the order of the first row's keys; a key missing in a row reads as 0.

    Example:
        >>> rows = [{"lr": 0.1, "opt": "adam"}, {"lr": 0.01, "opt": "sgd"}, {"lr": 0.2, "opt": "adam"}]
        >>> encoder = HyperparameterEncoder(min_count=1).fit(rows)
        >>> encoder.columns_
        ['lr', 'opt=adam', 'opt=sgd']
        >>> encoder.transform([{"lr": 0.5, "opt": "sgd"}]).tolist()
        [[0.5, 0.0, 1.0]]

    Args:
        min_count: Fitted rows a categorical level needs to get its own column.
    """

    def __init__(self, *, min_count: int = 2):
        if isinstance(min_count, bool) or int(min_count) != min_count or min_count < 1:
            raise ValueError(f"min_count must be a positive integer, got {min_count!r}")
        self.min_count = int(min_count)

    def fit(self, rows: Sequence[Mapping[str, Any]]) -> HyperparameterEncoder:
        names: list[str] = []
        for row in rows:
            names.extend(k for k in row if k not in names)
        self.numeric_: list[str] = []
        self.levels_: dict[str, list[str]] = {}
        for name in names:
            values = [row[name] for row in rows if name in row]
            if all(_is_number(v) for v in values):
                self.numeric_.append(name)
                continue
            counts: dict[str, int] = {}
            for v in values:
                counts[str(v)] = counts.get(str(v), 0) + 1
            self.levels_[name] = sorted(level for level, n in counts.items() if n >= self.min_count)
        self.columns_ = [
            name if name in self.numeric_ else f"{name}={level}"
            for name in names
            for level in ([None] if name in self.numeric_ else self.levels_[name])
        ]
        self._names = names
        return self

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not hasattr(self, "columns_"):
            raise RuntimeError("HyperparameterEncoder.transform called before fit")
        out = np.zeros((len(rows), len(self.columns_)))
        for i, row in enumerate(rows):
            j = 0
            for name in self._names:
                if name in self.numeric_:
                    out[i, j] = float(row.get(name, 0.0))
                    j += 1
                    continue
                levels = self.levels_[name]
                value = str(row[name]) if name in row else None
                if value in levels:
                    out[i, j + levels.index(value)] = 1.0
                j += len(levels)
        return out

    def fit_transform(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.fit(rows).transform(rows)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, str)
