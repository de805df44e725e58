"""Swift-Hyperband's rule: Hyperband's brackets and the in-rung prediction rule.

Swift-Hyperband (Garcia Amboage et al.) creates its own configurations in Hyperband
brackets, so it is not a :class:`qhpo.policies.StoppingPolicy` that could decide for trials
chosen elsewhere; the replay (:func:`qhpo.replay.replay_swift_hyperband`) drives a
:class:`SwiftHyperband` through its brackets and asks it at every rung.

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

from qhpo._checks import check_int


@dataclass(frozen=True)
class Bracket:
    """One Hyperband bracket: ``n`` new configurations and the ``(n_i, r_i)`` of its rungs."""

    s: int
    n: int
    rungs: tuple[tuple[int, int], ...]


class SwiftHyperband:
    """The decisions of Swift-Hyperband (and plain Hyperband) for a driver that runs the trials.

    The driver takes :meth:`brackets` in order, trains each rung's configurations and asks
    at every rung: where the decision point lies (:meth:`decision_epoch`), how many
    configurations continue without a prediction (:meth:`mandatory_full`) and which parked
    ones continue on their predicted values (:meth:`select_parked`); see the module
    docstring for the formulas.

    Example:
        >>> rule = SwiftHyperband(max_resource=100, reduction_factor=2)
        >>> rule.hyperband_epochs()
        (163, 3213)
        >>> rule.decision_epoch(previous=25, rung=50)
        38

    Args:
        max_resource: ``R``, the epochs of a configuration trained to the end.
        reduction_factor: ``eta``.
        min_resource: ``r_min`` (1 in the reference runs).
        d: Curves a predictor needs before it is used.
        k: Share of ``n_next`` always trained to the rung end.
        known_curve: Position of the decision point inside a rung, in (0, 1).
        quantile: Share of this rung's full trainings whose value a parked configuration
            must be predicted to beat (0.25: the 25 % best).
    """

    name = "swift-hyperband"

    def __init__(
        self,
        *,
        max_resource: int,
        reduction_factor: float = 2.0,
        min_resource: int = 1,
        d: int = 15,
        k: float = 0.5,
        known_curve: float = 0.5,
        quantile: float = 0.25,
    ):
        R = check_int("max_resource", max_resource, least=1)
        if not float(reduction_factor) > 1.0:
            raise ValueError(f"reduction_factor must be greater than 1, got {reduction_factor!r}")
        check_int("min_resource", min_resource, least=1, most=R)
        check_int("d", d, least=2)
        if not 0.0 <= float(k):
            raise ValueError(f"k must be at least 0, got {k!r}")
        if not 0.0 < float(known_curve) < 1.0:
            raise ValueError(f"known_curve must be in (0, 1), got {known_curve!r}")
        if not 0.0 < float(quantile) < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
        self.max_resource = R
        self.reduction_factor = float(reduction_factor)
        self.min_resource = int(min_resource)
        self.d = int(d)
        self.k = float(k)
        self.known_curve = float(known_curve)
        self.quantile = float(quantile)

    def brackets(self) -> list[Bracket]:
        """The brackets of one Hyperband iteration, most exploratory first."""
        R, eta = self.max_resource, self.reduction_factor
        s_max = int(math.floor(math.log(R / self.min_resource) / math.log(eta) + 1e-9))
        budget = (s_max + 1) * R
        brackets = []
        for s in range(s_max, -1, -1):
            n = int(math.ceil(budget / R * eta**s / (s + 1)))
            brackets.append(Bracket(s, n, self.bracket_rungs(n, s)))
        return brackets

    def bracket_rungs(self, n: int, s: int) -> tuple[tuple[int, int], ...]:
        """``(n_i, r_i)`` for the rungs ``i = 0..s`` of a bracket that starts ``n`` configurations."""
        eta = self.reduction_factor
        r = self.max_resource * eta ** (-s)
        return tuple((max(1, int(math.floor(n * eta ** (-i)))), int(round(r * eta**i))) for i in range(s + 1))

    def hyperband_epochs(self) -> tuple[int, int]:
        """``(configurations, epochs)`` of one plain Hyperband iteration with resumed training."""
        configs = epochs = 0
        for bracket in self.brackets():
            configs += bracket.n
            previous = 0
            for n_i, r_i in bracket.rungs:
                epochs += n_i * (r_i - previous)
                previous = r_i
        return configs, epochs

    def decision_epoch(self, previous: int, rung: int) -> int:
        """``t_d = r_{i-1} + ceil((r_i - r_{i-1}) * known_curve)``."""
        return previous + int(math.ceil((rung - previous) * self.known_curve))

    def mandatory_full(self, n_next: int, known_curves: int) -> int:
        """How many configurations of a rung continue to ``r_i`` without a prediction."""
        return max(int(math.ceil(self.k * n_next)), self.d - known_curves, 0)

    def select_parked(self, predicted: np.ndarray, full_values: np.ndarray, n_next: int) -> np.ndarray:
        """Indices of parked configurations that continue to ``r_i`` (values: higher is better).

        Keeps those predicted above the ``1 - quantile`` quantile of ``full_values`` (the
        rung values of this rung's full trainings), then tops up with the best predicted
        until ``len(full_values) + selected >= n_next``.
        """
        predicted = np.asarray(predicted, dtype=float)
        order = np.argsort(-predicted, kind="stable")
        if len(full_values):
            theta = float(np.quantile(np.asarray(full_values, dtype=float), 1.0 - self.quantile))
            chosen = [int(j) for j in order if predicted[j] > theta]
        else:
            chosen = []
        missing = n_next - len(full_values) - len(chosen)
        if missing > 0:
            rest = [int(j) for j in order if int(j) not in set(chosen)]
            chosen += rest[:missing]
        return np.array(sorted(chosen), dtype=int)
