"""A prior over learning curves learned from recorded tables: the final quantile of a run
predicted from the quantiles of its partial curve among its peers.

For a share ``s`` of training and a table of ``E`` epochs, let ``e = max(1, round(s * E))``
and ``V`` the "higher is better" values of the table's runs with finite curves up to ``e``.
Every run gets the features of :func:`prior_features` (its quantiles among the runs at the
epochs ``ceil(e * f)``, ``f`` in :data:`POINTS`, the quantile of its best value so far, and
hinges and a product of these) and the target ``y``, the quantile of its final value (a
diverged run ranks last). The model of share ``s`` is a ridge regression
``w = (sum_T A_T + lambda * D)^-1 sum_T b_T`` over the tables ``T`` it holds, with
``A_T = X_T' X_T / n_T`` and ``b_T = X_T' y_T / n_T`` (each table weighs the same, whatever
its number of runs; ``D`` is the identity less the intercept). A table enters only through
``A_T`` and ``b_T``, so that leaving one out is exact: its statistics are dropped before the
solve (:meth:`CurvePrior.leaving_out`). The statistics are sums taken with ``math.fsum``
(correctly rounded), so that building from the same tables gives the same file on any
machine.

This is a small, fixed-feature relative of the learned curve priors of LC-PFN (Adriaensen et
al., NeurIPS 2023) and FT-PFN in ifBO (Rakotoarison et al., ICML 2024), which train a
transformer on sampled curves; here the curves are recorded ones and the model a ridge on
ranks, so that a prior fits in milliseconds and its file is small and safe to read (JSON).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from qhpo._errors import QhpoError
from qhpo.curves import CurveTable, read_curve_table
from qhpo.priors._fingerprint import row_keys, table_fingerprint

#: Shares of training at which a model is fitted; a rung at share ``t / E`` reads the nearest (in log).
SHARES = (0.05, 0.1, 0.2)
#: The prior acts at rungs up to this share of training.
MAX_SHARE = 0.3
#: Points of the prefix (shares of it) whose quantiles are features.
POINTS = (0.25, 0.5, 0.75, 1.0)
FEATURES = ("1", "q1", "q2", "q3", "q4", "best", "(q4-0.5)+", "(q4-0.8)+", "(best-0.5)+", "(best-0.8)+", "q4*(q4-q1)")
#: Ridge penalty ``lambda`` (on the mean statistics of a table, summed over tables).
RIDGE = 1e-3
FORMAT = "qhpo-curve-prior"
VERSION = 1
#: The name that stands for the prior shipped in the package.
BUILTIN = "builtin"
REBUILD = "python -m qhpo.priors build --tables src/qhpo/data/curves --out src/qhpo/data/priors/curves.json"


def quantiles(values: np.ndarray) -> np.ndarray:
    """``(rank - 1) / (m - 1)`` of each value among ``values`` (ties averaged, NaN lowest;
    0.5 for a single value).

    Example:
        >>> quantiles(np.array([3.0, 1.0, np.nan, 2.0])).tolist()
        [1.0, 0.3333333333333333, 0.0, 0.6666666666666666]
    """
    v = np.where(np.isfinite(values), values, -np.inf)
    if len(v) == 1:
        return np.array([0.5])
    return (rankdata(v) - 1.0) / (len(v) - 1.0)


def prior_features(values: np.ndarray) -> np.ndarray:
    """The features of each row of ``values`` (``m x t``, higher is better, finite), one
    column per name in :data:`FEATURES`: 1; ``q_j``, the row's quantile at epoch
    ``ceil(t * f_j)`` (``f`` in :data:`POINTS`); ``best``, the quantile of its best value so
    far; hinges ``max(0, q4 - c)`` and ``max(0, best - c)`` at ``c`` = 0.5 and 0.8; and
    ``q4 * (q4 - q1)`` (a late rise weighs more near the top)."""
    values = np.asarray(values, dtype=float)
    m, t = values.shape
    q = [quantiles(values[:, max(1, math.ceil(t * f)) - 1]) for f in POINTS]
    best = quantiles(values.max(axis=1))
    hinge = [np.maximum(0.0, x - c) for x in (q[3], best) for c in (0.5, 0.8)]
    return np.column_stack([np.ones(m), *q, best, hinge[0], hinge[1], hinge[2], hinge[3], q[3] * (q[3] - q[0])])


def share_epoch(share: float, epochs: int) -> int:
    """``e = max(1, round(share * E))``: the epoch a model of ``share`` learns at."""
    return max(1, int(round(share * epochs)))


@dataclass(frozen=True)
class PriorTable:
    """What a prior holds of one table: its name, content fingerprint and row keys (to
    recognise it), and per share ``(n, A, b)`` (see the module's docstring)."""

    name: str
    fingerprint: str
    rows: int
    row_keys: tuple[str, ...]
    stats: dict[float, tuple[int, tuple[tuple[float, ...], ...], tuple[float, ...]]]

    def is_in(self, curves: np.ndarray) -> bool:
        """Whether ``curves`` hold this table or any row of it (by content, not by name)."""
        return table_fingerprint(curves) == self.fingerprint or not set(row_keys(curves)).isdisjoint(self.row_keys)


def table_statistics(table: CurveTable) -> PriorTable:
    """The prior's statistics of ``table`` at every share of :data:`SHARES` that ends
    before its last epoch (with at least 10 runs of finite prefix)."""
    v = table.sign * np.asarray(table.curves, dtype=float)
    stats = {}
    for share in SHARES:
        e = share_epoch(share, table.epochs)
        rows = np.flatnonzero(np.all(np.isfinite(v[:, :e]), axis=1))
        if e >= table.epochs or len(rows) < 10:
            continue
        x = prior_features(v[rows, :e])
        y = quantiles(v[rows, -1])
        n = len(rows)
        a = tuple(tuple(math.fsum(x[:, i] * x[:, j]) / n for j in range(x.shape[1])) for i in range(x.shape[1]))
        b = tuple(math.fsum(x[:, i] * y) / n for i in range(x.shape[1]))
        stats[share] = (n, a, b)
    return PriorTable(table.name, table_fingerprint(table.curves), table.n_trials, tuple(row_keys(table.curves)), stats)


@dataclass(frozen=True)
class FittedPrior:
    """The ridge models of a :class:`CurvePrior`, ready to predict.

    Attributes:
        weights: Share -> the coefficients ``w`` (one per feature).
        tables: The names of the tables it was fitted on.
        fingerprints: Their content fingerprints.
    """

    weights: dict[float, np.ndarray]
    tables: tuple[str, ...]
    fingerprints: tuple[str, ...]

    def share_for(self, t: int, epochs: int) -> float | None:
        """The share whose model ranks at epoch ``t`` of ``epochs`` (the nearest in log), or
        None when ``t / epochs`` exceeds :data:`MAX_SHARE` or no model exists."""
        s = t / epochs
        if s > MAX_SHARE or not self.weights:
            return None
        return min(self.weights, key=lambda share: (abs(math.log(share / s)), share))

    def predict(self, values: np.ndarray, epochs: int) -> np.ndarray | None:
        """The predicted final quantile (clipped to [0, 1]) of each row of ``values`` (``m x t``,
        higher is better, finite) in a study of ``epochs`` epochs; None where the prior does not act."""
        values = np.asarray(values, dtype=float)
        share = self.share_for(values.shape[1], epochs)
        if share is None:
            return None
        return np.clip(prior_features(values) @ self.weights[share], 0.0, 1.0)


@dataclass(frozen=True)
class CurvePrior:
    """The statistics of the tables a prior is built from (:func:`build_prior`), written as
    JSON (:meth:`to_json`) and fitted on demand (:meth:`fit`)."""

    tables: tuple[PriorTable, ...]

    def leaving_out(self, curves: np.ndarray) -> CurvePrior:
        """This prior without every table that ``curves`` hold or share a row with (a renamed
        copy, a draw of its rows, or a table cut to fewer epochs, recognised by content)."""
        return CurvePrior(tuple(t for t in self.tables if not t.is_in(curves)))

    def fit(self) -> FittedPrior:
        """The ridge model of every share that at least one table informs."""
        weights = {}
        d = len(FEATURES)
        for share in SHARES:
            held = [t.stats[share] for t in self.tables if share in t.stats]
            if not held:
                continue
            a = np.array([[math.fsum(h[1][i][j] for h in held) for j in range(d)] for i in range(d)])
            b = np.array([math.fsum(h[2][i] for h in held) for i in range(d)])
            penalty = RIDGE * len(held) * np.eye(d)
            penalty[0, 0] = 0.0
            weights[share] = np.linalg.solve(a + penalty, b)
        return FittedPrior(weights, tuple(t.name for t in self.tables), tuple(t.fingerprint for t in self.tables))

    def to_json(self) -> str:
        """The prior as JSON text: the same text for the same tables, on any machine."""
        document = {
            "format": FORMAT,
            "version": VERSION,
            "shares": list(SHARES),
            "points": list(POINTS),
            "features": list(FEATURES),
            "ridge": RIDGE,
            "rebuild": REBUILD,
            "tables": [
                {
                    "name": t.name,
                    "fingerprint": t.fingerprint,
                    "rows": t.rows,
                    "row_keys": list(t.row_keys),
                    "stats": {
                        repr(share): {"n": n, "A": [list(r) for r in a], "b": list(b)}
                        for share, (n, a, b) in sorted(t.stats.items())
                    },
                }
                for t in self.tables
            ],
        }
        return json.dumps(document, indent=1, allow_nan=False) + "\n"


def build_prior(tables: Iterable[CurveTable]) -> CurvePrior:
    """A prior of ``tables``, in the order of their names."""
    return CurvePrior(tuple(table_statistics(t) for t in sorted(tables, key=lambda t: t.name)))


def builtin_prior_path() -> Path:
    """The prior shipped in the package (built from the built-in tables by :data:`REBUILD`)."""
    return Path(os.fspath(resources.files("qhpo").joinpath("data", "priors", "curves.json")))


def _invalid(path: Path, why: str) -> QhpoError:
    return QhpoError(f"{path} is not a qhpo curve prior ({why}); rebuild it with `python -m qhpo.priors build`.")


def _numbers(value, length: int) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != length:
        raise ValueError
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise ValueError
    return tuple(float(x) for x in value)


def read_prior(path: str | Path) -> CurvePrior:
    """Read a prior written by :meth:`CurvePrior.to_json`, checking every field; any problem
    raises :class:`qhpo.QhpoError` with one sentence."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise QhpoError(f"cannot read the curve prior {path} ({error.strerror}); pass a prior file.") from None
    except (UnicodeDecodeError, ValueError):
        raise _invalid(path, "not JSON text") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _invalid(path, f"no 'format': {FORMAT!r}")
    expected = {"version": VERSION, "shares": list(SHARES), "points": list(POINTS), "features": list(FEATURES)}
    for key, value in expected.items():
        if document.get(key) != value:
            raise _invalid(path, f"its {key!r} is not this version's {value!r}")
    d = len(FEATURES)
    tables = []
    entries = document.get("tables")
    if not isinstance(entries, list):
        raise _invalid(path, "no list of tables")
    for k, entry in enumerate(entries):
        try:
            name, fingerprint, keys, rows = entry["name"], entry["fingerprint"], entry["row_keys"], entry["rows"]
            if not (isinstance(name, str) and isinstance(fingerprint, str) and len(fingerprint) == 64):
                raise ValueError
            if not isinstance(keys, list) or not all(isinstance(x, str) for x in keys):
                raise ValueError
            if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
                raise ValueError
            stats = {}
            for share_text, s in entry["stats"].items():
                share = float(share_text)
                if share not in SHARES or not isinstance(s["n"], int) or s["n"] < 1:
                    raise ValueError
                a = tuple(_numbers(row, d) for row in _rows(s["A"], d))
                stats[share] = (s["n"], a, _numbers(s["b"], d))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _invalid(path, f"table {k + 1} lacks a name, fingerprint, row keys or finite statistics") from None
        tables.append(PriorTable(name, fingerprint, rows, tuple(keys), stats))
    return CurvePrior(tuple(tables))


def _rows(value, length: int) -> list:
    if not isinstance(value, list) or len(value) != length:
        raise ValueError
    return value


@lru_cache(maxsize=8)
def _load(kind: str, path: str, stamp: tuple) -> CurvePrior:
    if kind == "file":
        return read_prior(path)
    return build_prior(read_curve_table(p) for p in sorted(Path(path).glob("*.csv")))


def load_prior(spec: str | os.PathLike) -> CurvePrior:
    """The prior ``spec`` names: ``"builtin"`` (the shipped one), a prior file (JSON), or a
    folder of curve tables (built for this process, then kept while its files are unchanged)."""
    path = builtin_prior_path() if str(spec) == BUILTIN else Path(spec)
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise QhpoError(f"the folder {path} holds no curve table (*.csv); pass a folder of curve tables.")
        stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        return _load("folder", str(path.resolve()), stamp)
    if not path.is_file():
        raise QhpoError(
            f"the curve prior {spec!r} is neither 'builtin', a prior file nor a folder of curve tables; pass one of those."
        )
    return _load("file", str(path.resolve()), (path.stat().st_mtime_ns, path.stat().st_size))


def prior_for_table(spec, curves: np.ndarray) -> FittedPrior:
    """The prior ``spec`` (a name, path or :class:`CurvePrior`) fitted without any table
    that ``curves`` hold or share a row with: what a replay of ``curves`` may use."""
    prior = spec if isinstance(spec, CurvePrior) else load_prior(spec)
    return prior.leaving_out(curves).fit()


def describe(prior: CurvePrior) -> Sequence[str]:
    """One line per table: its name, runs and fingerprint."""
    return [f"{t.name:<24}{t.rows:>6} runs  {t.fingerprint}" for t in prior.tables]
