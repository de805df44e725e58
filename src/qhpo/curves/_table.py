"""Reading recorded learning-curve tables.

A table is a CSV file (UTF-8, with or without a byte-order mark) with one row per trial:
column ``trial`` (integer id), columns ``epoch_1`` ... ``epoch_E`` (the metric after each
epoch, 1-based, no gaps) and every other column a hyperparameter named as in the search
space: numbers, or strings for a categorical hyperparameter. An optional column
``seconds_per_epoch`` gives the trial's training time per epoch and is not a
hyperparameter. A JSON sidecar ``<name>.json`` beside the table holds at least ``metric``,
``mode`` (``max`` or ``min``), ``epochs``, ``trials``, ``description``, ``source`` and
``license``.

An empty epoch cell is a divergence: the curve is NaN from that epoch on, so a row holds
finite values in ``epoch_1 .. epoch_d-1`` and empty cells from ``epoch_d`` to the end
(``d >= 2``). Finite values can be huge (a loss of 1e16 just before a divergence is a real
recorded value) and are kept as they are.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qhpo._errors import QhpoError

SIDECAR_KEYS = ("metric", "mode", "epochs", "trials", "description", "source", "license")
SECONDS_COLUMN = "seconds_per_epoch"
_EPOCH_COLUMN = re.compile(r"^epoch_(\d+)$")


@dataclass(frozen=True)
class CurveTable:
    """Learning curves of many trials, all of the same length.

    Attributes:
        name: The table's file stem.
        metric: Name of the recorded metric (for example ``accuracy``).
        mode: ``"max"`` when higher is better, ``"min"`` when lower is better.
        trial_ids: Integer ids, shape ``(T,)``.
        params: Hyperparameter name -> values of shape ``(T,)`` (int or float for a
            numeric column, str (object array) for a categorical one).
        curves: Metric after epochs ``1..E``, shape ``(T, E)``; a diverged trial holds NaN
            from its divergence on (see :attr:`diverged_at`).
        seconds_per_epoch: Per-trial seconds per epoch, shape ``(T,)``, or ``None``.
        meta: The sidecar's contents.
    """

    name: str
    metric: str
    mode: str
    trial_ids: np.ndarray
    params: dict[str, np.ndarray]
    curves: np.ndarray
    seconds_per_epoch: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return int(self.curves.shape[1])

    @property
    def n_trials(self) -> int:
        return int(self.curves.shape[0])

    @property
    def sign(self) -> float:
        """+1 for ``max`` tables, -1 for ``min``: ``sign * value`` is always "higher is better"."""
        return 1.0 if self.mode == "max" else -1.0

    @property
    def final_values(self) -> np.ndarray:
        """Value after the last epoch, shape ``(T,)``; NaN for a diverged trial."""
        return self.curves[:, -1]

    @property
    def diverged(self) -> np.ndarray:
        """Whether each trial diverged (its curve ends in NaN), shape ``(T,)``."""
        return np.isnan(self.curves[:, -1])

    @property
    def diverged_at(self) -> np.ndarray:
        """The first epoch (1-based) whose value is NaN, or 0 for a trial that never diverged."""
        nan = np.isnan(self.curves)
        return np.where(nan.any(axis=1), np.argmax(nan, axis=1) + 1, 0)

    @property
    def hyperparameter_names(self) -> list[str]:
        return list(self.params)

    @property
    def categorical_names(self) -> list[str]:
        """The hyperparameter columns that hold strings."""
        return [name for name, values in self.params.items() if values.dtype.kind not in "fiu"]

    def param_rows(self) -> list[dict[str, Any]]:
        """The hyperparameters of every trial, one dict per row."""
        rows = []
        for i in range(self.n_trials):
            rows.append({name: _python_scalar(values[i]) for name, values in self.params.items()})
        return rows

    def numeric_params(self) -> np.ndarray:
        """The numeric hyperparameter columns as a float matrix of shape ``(T, H)``."""
        columns = [v.astype(float) for v in self.params.values() if v.dtype.kind in "fiu"]
        if not columns:
            return np.zeros((self.n_trials, 0))
        return np.column_stack(columns)

    def hyperparameter_matrix(self) -> np.ndarray:
        """Every hyperparameter as predictor input: numbers as they are, categories one-hot.

        See :class:`qhpo.curves.HyperparameterEncoder` (fitted on this table's rows).
        """
        from qhpo.curves._features import HyperparameterEncoder

        rows = self.param_rows()
        return HyperparameterEncoder().fit(rows).transform(rows)

    def take(self, indices) -> CurveTable:
        """A new table with the rows at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=int)
        return CurveTable(
            name=self.name,
            metric=self.metric,
            mode=self.mode,
            trial_ids=self.trial_ids[idx],
            params={k: v[idx] for k, v in self.params.items()},
            curves=self.curves[idx],
            seconds_per_epoch=None if self.seconds_per_epoch is None else self.seconds_per_epoch[idx],
            meta=dict(self.meta),
        )

    def truncate(self, epochs: int) -> CurveTable:
        """A new table holding only the first ``epochs`` epochs of every curve."""
        if not 1 <= epochs <= self.epochs:
            raise ValueError(f"epochs must be in [1, {self.epochs}], got {epochs}")
        meta = dict(self.meta, epochs=epochs)
        return CurveTable(
            self.name,
            self.metric,
            self.mode,
            self.trial_ids,
            self.params,
            self.curves[:, :epochs],
            self.seconds_per_epoch,
            meta,
        )


def _python_scalar(value):
    return value.item() if hasattr(value, "item") else value


def _fail(path: Path, what: str) -> QhpoError:
    return QhpoError(f"curve table {path}: {what}")


def read_curve_table(path: str | Path) -> CurveTable:
    """Read a curve table and its JSON sidecar, checking the format.

    Any problem (missing file or sidecar, missing keys, gaps or duplicates in the epoch
    columns, a cell that is not a number, an empty cell that is not the tail of a
    diverged curve, an empty or non-finite hyperparameter, duplicate trial ids, counts
    that disagree with the sidecar) raises :class:`qhpo.QhpoError` with one sentence that
    names it.
    """
    path = Path(path)
    if not path.is_file():
        raise QhpoError(f"curve table {path} does not exist; pass the path of a CSV file in the curve-table format.")
    meta = _read_sidecar(path)
    header, body = _read_rows(path)
    epoch_order = _epoch_columns(path, header)
    _check_counts(path, meta, len(epoch_order), len(body))
    curves = _read_curves(path, header, body, epoch_order)
    _check_divergences(path, curves, body)
    ids = _read_trial_ids(path, header, body)
    params, seconds = _read_hyperparameters(path, header, body)
    return CurveTable(
        name=path.stem,
        metric=str(meta["metric"]),
        mode=meta["mode"],
        trial_ids=ids,
        params=params,
        curves=curves,
        seconds_per_epoch=seconds,
        meta=meta,
    )


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's JSON object, with ``mode`` checked and ``epochs``/``trials`` as ints."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise _fail(
            path, f"the JSON sidecar {sidecar.name} is missing beside it; it must hold {', '.join(SIDECAR_KEYS)}."
        )
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _fail(path, f"the sidecar {sidecar.name} is not valid JSON ({error}).") from None
    if not isinstance(meta, dict):
        raise _fail(path, f"the sidecar {sidecar.name} must hold a JSON object.")
    missing = [key for key in SIDECAR_KEYS if key not in meta]
    if missing:
        raise _fail(path, f"the sidecar {sidecar.name} lacks the key(s) {', '.join(missing)}.")
    if meta["mode"] not in ("max", "min"):
        raise _fail(path, f"the sidecar's mode must be 'max' or 'min', got {meta['mode']!r}.")
    for key in ("epochs", "trials"):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(path, f"the sidecar's {key} must be a positive whole number, got {value!r}.")
    return meta


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (names stripped) and data rows of the CSV; a UTF-8 byte-order mark is skipped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (UnicodeDecodeError, csv.Error) as error:
        raise _fail(path, f"is not a readable CSV file ({error}).") from None
    if len(rows) < 2:
        raise _fail(path, "has no data rows.")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        twice = next(name for name in header if header.count(name) > 1)
        raise _fail(path, f"has the column {twice!r} twice; name every column once.")
    if "trial" not in header:
        raise _fail(path, "has no 'trial' column.")
    body = rows[1:]
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise _fail(path, f"line {r} has {len(row)} cells, the header has {len(header)}.")
    return header, body


def _epoch_columns(path: Path, header: list[str]) -> list[int]:
    """Indices of the columns ``epoch_1 .. epoch_E``, in epoch order."""
    columns: dict[int, int] = {}
    for j, name in enumerate(header):
        match = _EPOCH_COLUMN.match(name)
        if not match:
            continue
        epoch = int(match.group(1))
        if epoch in columns:
            raise _fail(path, f"columns {header[columns[epoch]]} and {name} both name epoch {epoch}; keep one.")
        columns[epoch] = j
    if not columns:
        raise _fail(path, "has no epoch_<n> columns.")
    n_epochs = max(columns)
    gaps = sorted(set(range(1, n_epochs + 1)) - set(columns))
    if gaps:
        raise _fail(path, f"epoch columns must run epoch_1..epoch_{n_epochs} without gaps; epoch_{gaps[0]} is missing.")
    return [columns[e] for e in range(1, n_epochs + 1)]


def _check_counts(path: Path, meta: dict[str, Any], n_epochs: int, n_rows: int) -> None:
    if meta["epochs"] != n_epochs:
        raise _fail(path, f"the sidecar says {meta['epochs']} epochs but the table has {n_epochs}.")
    if meta["trials"] != n_rows:
        raise _fail(path, f"the sidecar says {meta['trials']} trials but the table has {n_rows} rows.")


def _number(path: Path, header: list[str], body: list[list[str]], r: int, j: int) -> float:
    """The finite number in row ``r``, column ``j`` (refused in one sentence otherwise)."""
    cell = body[r][j].strip()
    try:
        value = float(cell)
    except ValueError:
        raise _fail(path, f"line {r + 2}, column {header[j]}: {cell!r} is not a number.") from None
    if not math.isfinite(value):
        raise _fail(
            path,
            f"line {r + 2}, column {header[j]}: {cell!r} is not a finite number "
            "(leave the cells of a diverged run empty).",
        )
    return value


def _read_curves(path: Path, header: list[str], body: list[list[str]], order: list[int]) -> np.ndarray:
    """The epoch cells as a float matrix; an empty cell is NaN (a divergence)."""
    curves = np.empty((len(body), len(order)))
    for r, row in enumerate(body):
        for e, j in enumerate(order):
            curves[r, e] = np.nan if not row[j].strip() else _number(path, header, body, r, j)
    return curves


def _check_divergences(path: Path, curves: np.ndarray, body: list[list[str]]) -> None:
    """Empty cells only as the tail of a diverged curve, and never in ``epoch_1``."""
    nan = np.isnan(curves)
    first = np.flatnonzero(nan[:, 0])
    if first.size:
        raise _fail(path, f"line {first[0] + 2}: epoch_1 is empty; a run that diverged still has its first value.")
    # once a row is NaN it stays NaN: a finite value after a NaN is a gap, not a divergence
    gap = nan[:, :-1] & ~nan[:, 1:]
    rows = np.flatnonzero(gap.any(axis=1))
    if rows.size:
        r = int(rows[0])
        e = int(np.argmax(gap[r])) + 1
        raise _fail(
            path,
            f"line {r + 2}: epoch_{e} is empty but epoch_{e + 1} holds a value; only the epochs "
            "after a divergence may be empty, all of them.",
        )


def _read_trial_ids(path: Path, header: list[str], body: list[list[str]]) -> np.ndarray:
    j = header.index("trial")
    ids = []
    for r in range(len(body)):
        value = _number(path, header, body, r, j)
        if value != int(value):
            raise _fail(path, f"line {r + 2}: trial id {body[r][j]!r} is not an integer.")
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise _fail(path, "trial ids are not unique.")
    return np.array(ids, dtype=np.int64)


def _read_hyperparameters(
    path: Path, header: list[str], body: list[list[str]]
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Hyperparameter columns (numeric, or categorical when any cell is not a number) and seconds."""
    params: dict[str, np.ndarray] = {}
    seconds = None
    for j, name in enumerate(header):
        if name == "trial" or _EPOCH_COLUMN.match(name):
            continue
        cells = [body[r][j].strip() for r in range(len(body))]
        empty = [r for r, cell in enumerate(cells) if not cell]
        if empty:
            raise _fail(path, f"line {empty[0] + 2}: the hyperparameter {name} is empty; every trial needs a value.")
        values = _numeric_column(cells)
        if name == SECONDS_COLUMN:
            if values is None or not np.all(np.isfinite(values)) or np.any(values <= 0):
                raise _fail(path, f"column {SECONDS_COLUMN} must hold positive numbers.")
            seconds = values
            continue
        if values is None:
            params[name] = np.array(cells, dtype=object)  # a categorical hyperparameter
            continue
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise _fail(
                path, f"line {bad[0] + 2}: the hyperparameter {name} is {cells[bad[0]]!r}, not a finite number."
            )
        if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
            values = values.astype(np.int64)
        params[name] = values
    return params, seconds


def _numeric_column(cells: list[str]) -> np.ndarray | None:
    """The cells as floats, or None when any of them is not a number (a categorical column)."""
    try:
        return np.array([float(c) for c in cells], dtype=float)
    except ValueError:
        return None
