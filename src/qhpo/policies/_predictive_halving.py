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
        improvement_per_epoch: float | None = None,
        reference: str = "observed",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min_resource is None:
            min_resource = max(1, round(self.max_epochs / 20))
        if int(min_resource) < 1:
            raise ValueError(f"min_resource must be at least 1 epoch, got {min_resource}")
        if not float(reduction_factor) > 1.0:
            raise ValueError(f"reduction_factor must be greater than 1, got {reduction_factor}")
        deltas = tuple(float(x) for x in np.atleast_1d(delta))
        if not all(0.0 <= x < 1.0 for x in deltas):
            raise ValueError(f"delta must be in [0, 1) (one value or one per rung), got {delta}")
        self.min_resource = int(min_resource)
        self.reduction_factor = float(reduction_factor)
        self.delta = deltas[0] if len(deltas) == 1 else deltas
        self.rank_promotion = bool(rank_promotion)
        self.improvement_per_epoch = improvement_per_epoch
        self.reference = reference
        self.rungs = rung_epochs(self.max_epochs, self.min_resource, self.reduction_factor)
        self._deltas = tuple(deltas[min(i, len(deltas) - 1)] for i in range(len(self.rungs)))

    def decision_epochs(self) -> Sequence[int]:
        return self.rungs

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Decision:
        t = trial.epochs
        if t not in self.rungs:
            return Decision.CONTINUE
        done = self.sync(trials)
        if len(done) < self.min_completed:
            return Decision.CONTINUE
        rivals = [o for o in trials if o.key != trial.key and o.status != TrialStatus.FAILED and o.epochs >= t]
        prediction = self.predict_final(t, [trial] + (rivals if self.rank_promotion else []) + done)
        if prediction is None:
            return Decision.CONTINUE
        mean, std = self.sign * prediction[0], prediction[1]
        if self.reference == "predicted":
            best = float(np.max(mean[len(mean) - len(done):]))
        else:
            best = float(np.max(self.sign * np.array([d.curve[self.max_epochs - 1] for d in done])))
        mean = mean[: len(mean) - len(done)]
        sigma = max(float(std[0]), 1e-12)
        if self.improvement_per_epoch is not None:
            z = (mean[0] - best) / sigma
            gain = sigma * norm.pdf(z) + (mean[0] - best) * norm.cdf(z)
            later = [r for r in self.rungs if r > t]
            cost = (later[0] if later else self.max_epochs) - t
            if gain >= self.improvement_per_epoch * cost:
                return Decision.CONTINUE
        else:
            p_beat = float(norm.sf(best, loc=mean[0], scale=sigma))
            if p_beat >= self._deltas[self.rungs.index(t)]:
                return Decision.CONTINUE
        if self.rank_promotion:
            keep = max(1, math.floor(len(mean) / self.reduction_factor))
            if mean[0] >= np.sort(mean)[::-1][keep - 1]:
                return Decision.CONTINUE
        return Decision.STOP
