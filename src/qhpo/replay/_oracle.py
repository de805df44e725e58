"""Perfect prediction for the replay: the recorded value at the epoch the rule asks about.

A stopping rule that reads predictions can lose for two reasons: its predictions are wrong,
or the rule spends and keeps the wrong trials even with right ones. :class:`OracleService`
separates the two. It stands where a policy's :class:`qhpo.policies.PredictionService`
stands and answers every question with the table's truth: for the trial of row ``k``
asked about epoch ``h``,

    mean = c_k[h],   std = 0

(with ``final=True``, ``--predictor oracle-final``, ``h = E`` whatever the rule asks: what
ranking on the final value itself would win). The answer is in the units of the prefix it
was shown: the recorded metric when the prefix equals the row's recorded values, otherwise
"higher is better" units ``sign * c_k[h]``, which qhpo's halving rules and Swift-Hyperband
read. A row that diverged before ``h`` has no value there and is answered with the worst
one (``-inf`` in "higher is better" units). The oracle needs the rows' whole recorded
curves, which only a replay holds: ``qhpo run`` and the adapters refuse it
(:data:`qhpo.predictors.ORACLE_REFUSAL`).
"""

from __future__ import annotations

import numpy as np

from qhpo.predictors import ORACLE, ORACLE_FINAL


class OracleService:
    """Answers a policy's predictions with the recorded values of the replayed rows.

    Example:
        >>> import numpy as np
        >>> curves = np.array([[0.1, 0.2, 0.9], [0.3, 0.4, 0.5]])
        >>> oracle = OracleService(curves, mode="max")
        >>> mean, std = oracle.predict(1, curves[:, :1], keys=[0, 1], target=3)
        >>> mean.tolist(), std.tolist()
        ([0.9, 0.5], [0.0, 0.0])

    Args:
        curves: The replayed rows' recorded curves (n, E), in the order of their keys
            (the replay's trial keys are row numbers).
        mode: ``"max"`` or ``"min"``: the table's direction.
        final: Answer with the final value whatever epoch is asked about.
    """

    model = ORACLE
    active_model = ORACLE
    background = False
    hyperparameters = False  # the truth needs no features
    fallback_reason = None
    last_fit_error = None
    n_failed_fits = 0

    def __init__(self, curves, *, mode: str = "max", final: bool = False):
        curves = np.asarray(curves, dtype=float)
        if curves.ndim != 2 or curves.shape[1] == 0:
            raise ValueError(f"curves must be a 2-d array (trials, epochs), got shape {curves.shape}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.curves = curves
        self.final = bool(final)
        self.model = self.active_model = ORACLE_FINAL if self.final else ORACLE
        self.sign = 1.0 if mode == "max" else -1.0
        self.n_fits = 0
        self.fit_seconds = 0.0
        self.predict_seconds = 0.0
        self.n_predictions = 0

    @property
    def fitted(self) -> bool:
        return True

    @property
    def version(self) -> int:
        """Never changes: the oracle is the same model throughout."""
        return 0

    def update(self, curves, params=None) -> None:
        """Nothing to learn: the oracle reads the recorded curves."""

    def ready(self, t: int, target: int | None = None) -> bool:
        return True

    def predict(self, t: int, curves, params=None, *, target: int | None = None, keys=None):
        """``(mean, std)`` of the recorded values at ``target`` of the rows ``keys``.

        Args:
            t: Epochs of the prefixes (their units are read from them).
            curves: The prefixes the policy holds, shape (m, >=t).
            params: Ignored.
            target: The epoch asked about (``None``: the last epoch).
            keys: The replayed rows of the prefixes, one per row of ``curves``.
        """
        if keys is None:
            raise ValueError("the oracle predictor needs the replayed rows (keys) of the prefixes it is asked about")
        rows = np.asarray([int(k) for k in keys], dtype=int)
        prefixes = np.asarray(curves, dtype=float)
        if prefixes.ndim == 1:
            prefixes = prefixes[None, :]
        if prefixes.shape[0] != rows.shape[0]:
            raise ValueError(f"got {rows.shape[0]} keys for {prefixes.shape[0]} prefixes")
        E = self.curves.shape[1]
        h = E if target is None or self.final else int(target)
        if not 1 <= h <= E:
            raise ValueError(f"target must be an epoch in [1, {E}], got {target!r}")
        t = int(t)
        truth = self.sign * self.curves[rows, h - 1]
        truth = np.where(np.isfinite(truth), truth, -np.inf)  # a diverged row ranks below every finite value
        recorded = np.all(prefixes[:, :t] == self.curves[rows, :t], axis=1)
        mean = np.where(recorded, self.sign * truth, truth)  # back to metric units where the prefix is in them
        self.n_predictions += int(rows.shape[0])
        return mean, np.zeros(rows.shape[0])

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        """Nothing runs in the background."""

    def __repr__(self) -> str:
        return f"OracleService(rows={self.curves.shape[0]}, epochs={self.curves.shape[1]})"
