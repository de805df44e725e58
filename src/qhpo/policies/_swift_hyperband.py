"""The pieces of Swift-Hyperband: Hyperband's brackets and the in-rung prediction rule.

Swift-Hyperband (Garcia Amboage et al.) creates its own configurations in Hyperband
brackets, so it is not a :class:`qhpo.policies.StoppingPolicy` that could decide for trials
chosen elsewhere; the replay (:func:`qhpo.replay.replay_swift_hyperband`) drives it with
the functions here.

Hyperband (Li et al.), with ``R`` the maximum and ``r_min`` the minimum epochs and ``eta``
the reduction factor:

    s_max = floor(log_eta(R / r_min)),  B = (s_max + 1) R
    bracket s = s_max..0:  n = ceil(B / R * eta**s / (s + 1)),  r = R * eta**(-s)
    rung i = 0..s:  n_i = floor(n * eta**(-i)),  r_i = round(r * eta**i)

A rung trains its ``n_i`` configurations from ``r_{i-1}`` to ``r_i`` epochs (resuming from a
checkpoint) and promotes the best ``max(floor(n_i / eta), 1)``. With ``R = 100, eta = 2``
and ``r_min = 1`` plain Hyperband spends 3213 epochs on 163 configurations.

Swift-Hyperband adds a decision point inside each rung, at
``t_d = r_{i-1} + ceil((r_i - r_{i-1}) * known_curve)``: every configuration trains to
``t_d``; the first ``max(k * n_next, d - |curves|)`` to return continue to ``r_i`` at once
(``n_next = floor(n_i / eta)``, ``|curves|`` the curves of length ``>= r_i`` known at the
start of the rung); the others are parked. A predictor trained on the known curves
(first ``t_d`` epochs -> value at ``r_i``) predicts each parked configuration's value at
``r_i``; those predicted better than the 25 % best quantile (``quantile``) of the values
at ``r_i`` of this rung's full trainings continue to ``r_i``; when fewer than ``n_next``
configurations would reach ``r_i``, the best predicted ones are added until ``n_next`` do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bracket:
    """One Hyperband bracket: ``n`` new configurations and the ``(n_i, r_i)`` of its rungs."""

    s: int
    n: int
    rungs: tuple[tuple[int, int], ...]


def hyperband_brackets(max_resource: int, reduction_factor: float = 2.0, min_resource: int = 1) -> list[Bracket]:
    """The brackets of one Hyperband iteration, most exploratory first (see module docstring)."""
    R, eta = int(max_resource), float(reduction_factor)
    if R < 1:
        raise ValueError(f"max_resource must be at least 1 epoch, got {max_resource}")
    if not eta > 1.0:
        raise ValueError(f"reduction_factor must be greater than 1, got {reduction_factor}")
    if not 1 <= int(min_resource) <= R:
        raise ValueError(f"min_resource must be in [1, max_resource={R}], got {min_resource}")
    s_max = int(math.floor(math.log(R / int(min_resource)) / math.log(eta) + 1e-9))
    budget = (s_max + 1) * R
    brackets = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil(budget / R * eta**s / (s + 1)))
        brackets.append(Bracket(s, n, bracket_rungs(n, s, R, eta)))
    return brackets


def bracket_rungs(n: int, s: int, max_resource: int, reduction_factor: float) -> tuple[tuple[int, int], ...]:
    """``(n_i, r_i)`` for the rungs ``i = 0..s`` of a bracket that starts ``n`` configurations."""
    r = max_resource * reduction_factor ** (-s)
    return tuple((max(1, int(math.floor(n * reduction_factor ** (-i)))), int(round(r * reduction_factor**i)))
                 for i in range(s + 1))


def hyperband_epochs(max_resource: int, reduction_factor: float = 2.0, min_resource: int = 1) -> tuple[int, int]:
    """``(configurations, epochs)`` of one plain Hyperband iteration with resumed training."""
    configs = epochs = 0
    for bracket in hyperband_brackets(max_resource, reduction_factor, min_resource):
        configs += bracket.n
        previous = 0
        for n_i, r_i in bracket.rungs:
            epochs += n_i * (r_i - previous)
            previous = r_i
    return configs, epochs


def decision_epoch(previous: int, rung: int, known_curve: float) -> int:
    """``t_d = r_{i-1} + ceil((r_i - r_{i-1}) * known_curve)``."""
    return previous + int(math.ceil((rung - previous) * known_curve))


def mandatory_full(n_next: int, known_curves: int, *, k: float, d: int) -> int:
    """How many configurations of a rung continue to ``r_i`` without a prediction."""
    return max(int(math.ceil(k * n_next)), d - known_curves, 0)


def select_parked(predicted: np.ndarray, full_values: np.ndarray, n_next: int, *, quantile: float) -> np.ndarray:
    """Indices of parked configurations that continue to ``r_i`` (values: higher is better).

    Keeps those predicted above the ``1 - quantile`` quantile of ``full_values`` (the rung
    values of this rung's full trainings; a loss below its 25 % quantile), then tops up
    with the best predicted until ``len(full_values) + selected >= n_next``.
    """
    predicted = np.asarray(predicted, dtype=float)
    order = np.argsort(-predicted, kind="stable")
    if len(full_values):
        theta = float(np.quantile(np.asarray(full_values, dtype=float), 1.0 - quantile))
        chosen = [int(j) for j in order if predicted[j] > theta]
    else:
        chosen = []
    missing = n_next - len(full_values) - len(chosen)
    if missing > 0:
        rest = [int(j) for j in order if int(j) not in set(chosen)]
        chosen += rest[:missing]
    return np.array(sorted(chosen), dtype=int)
