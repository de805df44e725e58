"""The cheapest strong baseline: one epoch for every configuration, the best few finish."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from qhpo._checks import check_int
from qhpo.policies._base import Decision, StoppingPolicy, TrialStatus, TrialView, Verdict


class OneEpoch(StoppingPolicy):
    """Train every configuration ``decision_epoch`` epochs (one by default), finish the best.

    The "1-Epoch" baseline of Egele, Guyon, Sun and Balaprakash, "Is One Epoch All You
    Need For Multi-Fidelity Hyperparameter Optimization?" (ESANN 2023, arXiv 2307.15422):
    every configuration trains one epoch and only the top ``K`` are trained further. Here
    the rule decides asynchronously, as a rung rule with a single rung at
    ``r = decision_epoch``: when a trial reaches ``r``, with ``m`` trials (it included)
    that have reached ``r`` with finite values so far, in any status but failed, and
    ``v = sign * c_r`` their values at ``r``, it trains to the end when

        v_trial >= v_(k),   k = max(1, floor(share * m)),

    ``v_(k)`` the ``k``-th best value (ties continue); otherwise it stops for good. In a
    study of ``n`` trials that run one after another, trial ``i`` (``m = i``) finishes when
    it ranks within the best ``share`` of the ``i`` trials seen so far, so the rule finishes
    about ``share * n`` trials plus the few early leaders (a trial that is the best so far
    among fewer than ``1 / share`` trials), and costs

        cost = (n * r + F * (E - r)) / (n * E),   F = the trials it finishes.

    ``share = 0.1`` by default: ``K`` about a tenth of the configurations, a round share
    not tuned on any table, which puts the rule's cost near ``r / E + share`` (below
    successive halving's with ``eta = 3``) and gives the eventual winner about ten places
    to pass the first epoch in.
    A trial whose value at ``r`` is NaN or infinite stops.

    Example:
        >>> from qhpo.policies import TrialView
        >>> rule = OneEpoch(max_epochs=10, share=0.5)
        >>> trials = [TrialView(0, [0.5]), TrialView(1, [0.3]), TrialView(2, [0.4])]
        >>> rule.decide(trials[2], trials).decision   # 2nd of 3, k = max(1, floor(1.5)) = 1
        <Decision.STOP: 'stop'>

    Args:
        max_epochs: Epochs of a trial that is never stopped.
        mode: ``"max"`` or ``"min"``.
        share: The share of the trials at ``decision_epoch`` that train to the end (0, 1].
        decision_epoch: The single rung, in epochs (default 1; below ``max_epochs``).
    """

    name = "one-epoch"

    def __init__(self, *, max_epochs: int, mode: str = "max", share: float = 0.1, decision_epoch: int = 1):
        super().__init__(max_epochs=max_epochs, mode=mode)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < float(share) <= 1.0:
            raise ValueError(f"share must be a number in (0, 1], got {share!r}")
        self.share = float(share)
        self.decision_epoch = check_int("decision_epoch", decision_epoch, least=1, most=self.max_epochs - 1)

    def decision_epochs(self) -> Sequence[int]:
        return (self.decision_epoch,)

    def keep(self, m: int) -> int:
        """``k = max(1, floor(share * m))``: how many of ``m`` trials at the rung finish."""
        return max(1, math.floor(self.share * m + 1e-9))  # 1e-9: 0.3 * 10 is 3, not 2.9999

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        r = self.decision_epoch
        if trial.epochs != r:
            return Verdict(Decision.CONTINUE, trial.epochs, f"the decision epoch is {r}")
        if trial.finite_epochs < r:
            return Verdict(Decision.STOP, r, f"the curve is not finite within its first {r} epochs")
        values = [self.sign * float(trial.curve[r - 1])] + [
            self.sign * float(o.curve[r - 1])
            for o in trials
            if o.key != trial.key and o.status != TrialStatus.FAILED and o.epochs >= r and o.finite_epochs >= r
        ]
        k = self.keep(len(values))
        cut = float(np.sort(values)[::-1][k - 1])
        where = "within" if values[0] >= cut else "outside"
        reason = (
            f"value {self.sign * values[0]:.4g} at epoch {r} ranks {where} the best {k} of {len(values)} "
            f"(cut-off {self.sign * cut:.4g})"
        )
        decision = Decision.CONTINUE if values[0] >= cut else Decision.STOP
        return Verdict(decision, r, reason, threshold=self.sign * cut)
