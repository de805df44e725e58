"""Reading recorded learning-curve tables.

A table is a CSV file with one row per trial: column ``trial`` (integer id), columns
``epoch_1`` ... ``epoch_E`` (the metric after each epoch, 1-based, no gaps) and every other
column a hyperparameter named as in the search space. An optional column
``seconds_per_epoch`` gives the trial's training time per epoch and is not a
hyperparameter. A JSON sidecar ``<name>.json`` beside the table holds at least ``metric``,
``mode`` (``max`` or ``min``), ``epochs``, ``trials``, ``description``, ``source`` and
``license``.
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
        params: Hyperparameter name -> values of shape ``(T,)`` (float, or str where a
            column is not numeric).
        curves: Metric after epochs ``1..E``, shape ``(T, E)``.
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
        return self.curves[:, -1]

    @property
    def hyperparameter_names(self) -> list[str]:
        return list(self.params)

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

    def take(self, indices) -> "CurveTable":
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

    def truncate(self, epochs: int) -> "CurveTable":
        """A new table holding only the first ``epochs`` epochs of every curve."""
        if not 1 <= epochs <= self.epochs:
            raise ValueError(f"epochs must be in [1, {self.epochs}], got {epochs}")
        meta = dict(self.meta, epochs=epochs)
        return CurveTable(self.name, self.metric, self.mode, self.trial_ids, self.params,
                          self.curves[:, :epochs], self.seconds_per_epoch, meta)


def _python_scalar(value):
    return value.item() if hasattr(value, "item") else value


def _fail(path: Path, what: str) -> QhpoError:
    return QhpoError(f"curve table {path}: {what}")


def read_curve_table(path: str | Path) -> CurveTable:
    """Read a curve table and its JSON sidecar, checking the format.

    Any problem (missing file or sidecar, missing keys, gaps in the epoch columns, a cell
    that is not a finite number, duplicate trial ids, counts that disagree with the
    sidecar) raises :class:`qhpo.QhpoError` with one sentence that names it.
    """
    path = Path(path)
    if not path.is_file():
        raise QhpoError(f"curve table {path} does not exist; pass the path of a CSV file in the curve-table format.")
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise _fail(path, f"the JSON sidecar {sidecar.name} is missing beside it; it must hold {', '.join(SIDECAR_KEYS)}.")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _fail(path, f"the sidecar {sidecar.name} is not valid JSON ({error}).") from None
    if not isinstance(meta, dict):
        raise _fail(path, f"the sidecar {sidecar.name} must hold a JSON object.")
    missing = [key for key in SIDECAR_KEYS if key not in meta]
    if missing:
        raise _fail(path, f"the sidecar {sidecar.name} lacks the key(s) {', '.join(missing)}.")
    mode = meta["mode"]
    if mode not in ("max", "min"):
        raise _fail(path, f"the sidecar's mode must be 'max' or 'min', got {mode!r}.")

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise _fail(path, f"is not a readable CSV file ({error}).") from None
    rows = [row for row in rows if row]
    if len(rows) < 2:
        raise _fail(path, "has no data rows.")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        raise _fail(path, "has duplicate column names.")
    if "trial" not in header:
        raise _fail(path, "has no 'trial' column.")
    epoch_cols = {}
    for j, name in enumerate(header):
        match = _EPOCH_COLUMN.match(name)
        if match:
            epoch_cols[int(match.group(1))] = j
    if not epoch_cols:
        raise _fail(path, "has no epoch_<n> columns.")
    n_epochs = max(epoch_cols)
    gaps = sorted(set(range(1, n_epochs + 1)) - set(epoch_cols))
    if gaps:
        raise _fail(path, f"epoch columns must run epoch_1..epoch_{n_epochs} without gaps; epoch_{gaps[0]} is missing.")
    if int(meta["epochs"]) != n_epochs:
        raise _fail(path, f"the sidecar says {meta['epochs']} epochs but the table has {n_epochs}.")

    body = rows[1:]
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise _fail(path, f"line {r} has {len(row)} cells, the header has {len(header)}.")
    if int(meta["trials"]) != len(body):
        raise _fail(path, f"the sidecar says {meta['trials']} trials but the table has {len(body)} rows.")

    def number(r: int, j: int) -> float:
        cell = body[r][j].strip()
        try:
            value = float(cell)
        except ValueError:
            raise _fail(path, f"line {r + 2}, column {header[j]}: {cell!r} is not a number.") from None
        if not math.isfinite(value):
            raise _fail(path, f"line {r + 2}, column {header[j]}: {cell!r} is not a finite number.")
        return value

    order = [epoch_cols[e] for e in range(1, n_epochs + 1)]
    curves = np.array([[number(r, j) for j in order] for r in range(len(body))], dtype=float)
    trial_col = header.index("trial")
    ids = []
    for r in range(len(body)):
        value = number(r, trial_col)
        if value != int(value):
            raise _fail(path, f"line {r + 2}: trial id {body[r][trial_col]!r} is not an integer.")
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise _fail(path, "trial ids are not unique.")

    params: dict[str, np.ndarray] = {}
    seconds = None
    for j, name in enumerate(header):
        if name == "trial" or _EPOCH_COLUMN.match(name):
            continue
        cells = [body[r][j].strip() for r in range(len(body))]
        try:
            values = np.array([float(c) for c in cells], dtype=float)
        except ValueError:
            values = np.array(cells, dtype=object)
        if name == SECONDS_COLUMN:
            if values.dtype == object or not np.all(np.isfinite(values)) or np.any(values <= 0):
                raise _fail(path, f"column {SECONDS_COLUMN} must hold positive numbers.")
            seconds = values
            continue
        if values.dtype.kind == "f" and np.all(values == np.round(values)) and np.all(np.isfinite(values)):
            values = values.astype(np.int64)
        params[name] = values

    return CurveTable(
        name=path.stem,
        metric=str(meta["metric"]),
        mode=mode,
        trial_ids=np.array(ids, dtype=np.int64),
        params=params,
        curves=curves,
        seconds_per_epoch=seconds,
        meta=meta,
    )
