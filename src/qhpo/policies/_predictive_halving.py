"""qhpo's default policy: asynchronous successive halving on predicted final values."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import norm

from qhpo.policies._base import Decision, TrialView, Verdict
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

    At each rung ``r_k = min_resource * eta**k`` the predictor reads the first ``r_k``
    epochs of every trial that has reached the rung and predicts its final value as a
    Gaussian ``N(mu, sigma^2)`` (``sigma``: model spread and held-out residuals). By
    default the model learns the change after the rung, ``y_T - a_k`` (``relative``), with
    ``a_k`` the mean of the last ``anchor_window`` epochs before the rung (default half
    the first rung), so it spends its capacity on what the prefix does not already say
    and a single noisy epoch does not shift the prediction. In "higher is
    better" units (``sign``) the trial continues when either

    * its predicted final ranks within the best ``floor(m / eta)`` of the ``m`` trials
      that have reached the rung (successive halving, asynchronous as in ASHA, but on
      ``mu`` instead of the current value); or
    * it is a likely winner (Baker et al.): ``P(Y_T > y_best) = Phi((mu - y_best) / sigma)
      >= delta_k``, with ``y_best`` the best final value of the completed trials.

    ``delta`` is one value or one per rung; 1 switches the second rule off at that rung
    (the default leaves the first rung, where predictions are weakest, to ranking alone).
    The first ``min_completed`` trials run to the end and train the predictor, which is
    refitted as completed curves accumulate; while no model exists for a rung (background
    fitting) the trial continues.

    Example:
        >>> from qhpo.policies import make_policy
        >>> make_policy("qhpo", max_epochs=200).decision_epochs()
        (10, 30, 90)

    Args:
        min_resource: First rung in epochs (default ``max_epochs / 20``).
        reduction_factor: ``eta``: the growth of the rungs and the inverse of the share a
            rung promotes by rank.
        delta: Probability of beating the best completed trial above which a trial is
            promoted whatever its rank, per rung (the last value repeats).
        rank_promotion: Promote the best ``1/eta`` by predicted final value.
        min_completed: Trials that run to the end before any is stopped.
        relative: The predictor learns the change after the rung.
        anchor_window: Epochs averaged into the anchor ``a_k`` (default
            ``min_resource / 2``).
        **kwargs: See :class:`qhpo.policies.PredictivePolicy`.
    """

    name = "qhpo"

    def __init__(
        self,
        *,
        max_epochs: int,
        min_resource: int | None = None,
        reduction_factor: float = 3.0,
        delta: float | Sequence[float] = (1.0, 0.4, 0.5),
        rank_promotion: bool = True,
        min_completed: int = 3,
        relative: bool = True,
        anchor_window: int | None = None,
        **kwargs,
    ):
        if min_resource is None:
            min_resource = max(1, round(int(max_epochs) / 20))
        if int(min_resource) < 1:
            raise ValueError(f"min_resource must be at least 1 epoch, got {min_resource}")
        if anchor_window is None:
            anchor_window = max(1, round(int(min_resource) / 2))
        super().__init__(max_epochs=max_epochs, min_completed=min_completed, relative=relative,
                         anchor_window=anchor_window, **kwargs)
        if not float(reduction_factor) > 1.0:
            raise ValueError(f"reduction_factor must be greater than 1, got {reduction_factor}")
        deltas = tuple(float(x) for x in np.atleast_1d(delta))
        if not deltas or not all(0.0 <= x <= 1.0 for x in deltas):
            raise ValueError(f"delta must be in [0, 1] (one value or one per rung), got {delta}")
        self.min_resource = int(min_resource)
        self.reduction_factor = float(reduction_factor)
        self.delta = delta
        self.rank_promotion = bool(rank_promotion)
        self.rungs = rung_epochs(self.max_epochs, self.min_resource, self.reduction_factor)
        self._deltas = tuple(deltas[min(i, len(deltas) - 1)] for i in range(len(self.rungs)))

    def decision_epochs(self) -> Sequence[int]:
        return self.rungs

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        t = trial.epochs
        if t not in self.rungs:
            return Verdict(Decision.CONTINUE, t, f"epoch {t} is not a rung")
        early, done = self.screen(trial, trials, t)
        if early is not None:
            return early
        rivals = self.rivals(trial, trials, t)
        prediction = self.predict_final(t, [trial] + (rivals if self.rank_promotion else []))
        if prediction is None:
            return self.no_model(t)
        mu, sigma = self.sign * prediction[0], max(float(prediction[1][0]), 1e-12)
        predicted, std = float(prediction[0][0]), float(prediction[1][0])
        stated = f"predicted final {predicted:.4g} ± {std:.2g}"
        delta = self._deltas[self.rungs.index(t)]
        why: list[str] = []
        compared = None  # the value the last rule compared the prediction with ("higher is better")
        if delta < 1.0:
            best = float(np.max(self.sign * np.array([d.curve[self.max_epochs - 1] for d in done])))
            p_best = float(norm.sf(best, loc=mu[0], scale=sigma))
            beats = f"P(beating the best completed final {self.sign * best:.4g}) = {p_best:.2f}"
            if p_best >= delta:
                return Verdict(Decision.CONTINUE, t, f"{stated}: {beats} >= {delta:.2f}", predicted=predicted,
                               std=std, threshold=self.sign * best)
            why.append(f"{beats} < {delta:.2f}")
            compared = best
        if self.rank_promotion:
            keep = max(1, math.floor(len(mu) / self.reduction_factor))
            cut = float(np.sort(mu)[::-1][keep - 1])
            ranked = f"the best {keep} of {len(mu)} at rung {t} (cut-off {self.sign * cut:.4g})"
            if mu[0] >= cut:
                return Verdict(Decision.CONTINUE, t, f"{stated} ranks within {ranked}", predicted=predicted,
                               std=std, threshold=self.sign * cut)
            why.insert(0, f"ranks outside {ranked}")
            compared = cut
        return Verdict(Decision.STOP, t, f"{stated}: " + ("; ".join(why) or "no rule promotes at this rung"),
                       predicted=predicted, std=std, threshold=None if compared is None else self.sign * compared)
