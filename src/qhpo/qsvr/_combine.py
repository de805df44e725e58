"""Turning the lowest-energy annealer samples into one model.

The annealer returns many bit vectors; the ``S`` unique ones of lowest energy are kept
(fewer when fewer come back). Sample ``s`` is a complete SVR ``f_s(x) = sum_n d_sn
k(x, x_n) + b_s``, and the model is the weighted mean ``f(x) = sum_s omega_s f_s(x)``
(the same as averaging ``d`` and ``b`` with the weights ``omega``). Rules for ``omega``:

- ``"best"``: all weight on the lowest-energy sample;
- ``"mean"``: ``omega_s = 1/S``;
- ``"heldout"``: ``omega_s proportional to 1 / MSE_s`` where ``MSE_s`` is the error of
  ``f_s`` on points that were *not* in the QUBO. Weights are never computed on the
  training points themselves, which every sample fits by construction.
"""

from __future__ import annotations

import numpy as np

COMBINATIONS = ("best", "mean", "heldout")


def unique_lowest(bits: np.ndarray, energies: np.ndarray, S: int):
    """The at most ``S`` unique rows of ``bits`` with the lowest energies, lowest first."""
    bits = np.asarray(bits)
    energies = np.asarray(energies, dtype=float)
    _, first = np.unique(bits, axis=0, return_index=True)
    order = first[np.argsort(energies[first], kind="stable")][: int(S)]
    return bits[order], energies[order]


def combination_weights(
    rule: str, heldout_predictions: np.ndarray | None = None, heldout_y: np.ndarray | None = None, *, n_samples: int
) -> np.ndarray:
    """The weights ``omega`` of ``n_samples`` samples sorted by energy, for ``rule``.

    Args:
        heldout_predictions: Shape ``(S, H)``: each sample's predictions on ``H`` points
            outside the QUBO (needed for ``"heldout"``).
        heldout_y: Shape ``(H,)``: the true values on those points.
    """
    if rule not in COMBINATIONS:
        raise ValueError(f"combination must be one of {', '.join(COMBINATIONS)}, got {rule!r}")
    if rule == "best":
        weights = np.zeros(n_samples)
        weights[0] = 1.0
        return weights
    if rule == "mean":
        return np.full(n_samples, 1.0 / n_samples)
    assert heldout_predictions is not None and heldout_y is not None
    mse = np.mean((heldout_predictions - heldout_y[None, :]) ** 2, axis=1)
    # A floor keeps one perfect sample from taking infinite weight.
    inverse = 1.0 / np.maximum(mse, 1e-12)
    return inverse / inverse.sum()
