"""qhpo's default policy: asynchronous successive halving on predicted final values."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import norm

from qhpo.policies._base import Decision, TrialStatus, TrialView
from qhpo.policies._predictive import PredictivePolicy


def rung_epochs(max_epochs: int, min_resource: int, reduction_factor: float) -> tuple[int, ...]:
    """Rungs ``r_k = round(min_resource * reduction_factor**k) < max_epochs``, k = 0, 1, ..."""
    rungs: list[int] = []
    k = 0
    while True:
        r = int(round(min_resource * reduction_factor**k))
        if r >= max_epochs:
            return tuple(rungs)
        if not rungs or r > rungs[-1]:
            rungs.append(r)
        k += 1


class PredictiveHalving(PredictivePolicy):
    """Asynchronous successive halving whose promotions read the predicted final value.

    At each rung ``r_k = min_resource * eta**k`` the predictor reads the trial's first
    ``r_k`` epochs and returns the predicted final value as a Gaussian ``N(mu, sigma^2)``
    (``sigma`` combines the model spread and held-out residuals). In "higher is better"
    units (``sign``) the trial continues when either

    * it is a likely winner (Baker et al.): ``P(Y > y_best) = Phi((mu - y_best) / sigma) >= delta``,
      with ``y_best`` the best final value of the completed trials; or
    * its predicted final ranks within the best ``1/eta`` of all trials that reached the
      rung (completed trials by their final value, the others by their prediction), as
      successive halving would rank the current values.

    Setting ``rank_promotion=False`` keeps only the first rule. Trials run to the end until
    ``min_completed`` trials are complete; while no model exists for a rung (background
    fitting) the trial continues.

    Example:
        >>> from qhpo.policies import make_policy
        >>> make_policy("qhpo", max_epochs=200).decision_epochs()
        (10, 30, 90)

    Args:
        min_resource: First rung in epochs (default ``max_epochs / 20``).
        reduction_factor: ``eta``, the growth of the rungs and the inverse of the share a
            rung promotes by rank.
        delta: Promote when the probability of beating the best completed trial is at
            least ``delta``.
        rank_promotion: Also promote the best ``1/eta`` by predicted final value.
        **kwargs: See :class:`qhpo.policies.PredictivePolicy`.
    """

    name = "qhpo"

    def __init__(
        self,
        *,
        min_resource: int | None = None,
        reduction_factor: float = 3.0,
        delta: float = 0.05,
        rank_promotion: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min_resource is None:
            min_resource = max(1, round(self.max_epochs / 20))
        if int(min_resource) < 1:
            raise ValueError(f"min_resource must be at least 1 epoch, got {min_resource}")
        if not float(reduction_factor) > 1.0:
            raise ValueError(f"reduction_factor must be greater than 1, got {reduction_factor}")
        if not 0.0 <= float(delta) < 1.0:
            raise ValueError(f"delta must be in [0, 1), got {delta}")
        self.min_resource = int(min_resource)
        self.reduction_factor = float(reduction_factor)
        self.delta = float(delta)
        self.rank_promotion = bool(rank_promotion)
        self.rungs = rung_epochs(self.max_epochs, self.min_resource, self.reduction_factor)

    def decision_epochs(self) -> Sequence[int]:
        return self.rungs

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Decision:
        t = trial.epochs
        if t not in self.rungs:
            return Decision.CONTINUE
        done = self.sync(trials)
        if len(done) < self.min_completed:
            return Decision.CONTINUE
        done_keys = {d.key for d in done}
        others = [o for o in trials if o.key != trial.key and o.key not in done_keys
                  and o.status != TrialStatus.FAILED and o.epochs >= t] if self.rank_promotion else []
        prediction = self.predict_final(t, [trial] + others)
        if prediction is None:
            return Decision.CONTINUE
        mean, std = self.sign * prediction[0], prediction[1]
        finals = self.sign * np.array([d.curve[self.max_epochs - 1] for d in done])
        best = float(finals.max())
        p_beat = float(norm.sf(best, loc=mean[0], scale=max(float(std[0]), 1e-12)))
        if p_beat >= self.delta:
            return Decision.CONTINUE
        if self.rank_promotion:
            scores = np.concatenate([mean, finals])
            keep = max(1, math.floor(len(scores) / self.reduction_factor))
            if mean[0] >= np.sort(scores)[::-1][keep - 1]:
                return Decision.CONTINUE
        return Decision.STOP
