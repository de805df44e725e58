"""The workflow of the hybrid quantum-classical HPO poster: one decision at mid-training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qhpo.policies._base import Decision, TrialView, Verdict
from qhpo.policies._predictive import PredictivePolicy


class DecisionPointPolicy(PredictivePolicy):
    """Train every trial to a decision epoch, then continue only those predicted to be good.

    At epoch ``t = round(decision_fraction * max_epochs)`` the predictor, trained on the
    completed curves, predicts the trial's final value ``mu``. Each trial that has passed
    ``t`` is scored by its final value when complete and by its predicted final otherwise;
    with ``s = sign * score`` (higher is better) the trial continues when

        s_trial >= Quantile_{1 - keep_fraction}({s_j : j passed t} U {s_trial})

    i.e. when it ranks within the best ``keep_fraction`` of all trials seen at ``t``. The
    first ``min_completed`` trials run to the end to give the predictor its training data.

    Example:
        >>> from qhpo.policies import make_policy
        >>> policy = make_policy("poster", max_epochs=200)
        >>> policy.decision_epochs()
        (100,)

    Args:
        decision_fraction: Decision epoch as a fraction of ``max_epochs`` (poster: 0.5).
        keep_fraction: Share of trials allowed to continue past the decision epoch.
        **kwargs: See :class:`qhpo.policies.PredictivePolicy`.
    """

    name = "poster"

    def __init__(self, *, decision_fraction: float = 0.5, keep_fraction: float = 0.4, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < float(decision_fraction) < 1.0:
            raise ValueError(f"decision_fraction must be in (0, 1), got {decision_fraction}")
        if not 0.0 < float(keep_fraction) <= 1.0:
            raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
        self.decision_fraction = float(decision_fraction)
        self.keep_fraction = float(keep_fraction)
        self.decision_epoch = min(self.max_epochs - 1, max(1, round(self.decision_fraction * self.max_epochs)))

    def decision_epochs(self) -> Sequence[int]:
        return (self.decision_epoch,)

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        t = self.decision_epoch
        if trial.epochs != t or t >= self.max_epochs:
            return Verdict(Decision.CONTINUE, trial.epochs, f"the decision epoch is {t}")
        early, done = self.screen(trial, trials, t)
        if early is not None:
            return early
        done_keys = {d.key for d in done}
        others = [o for o in self.rivals(trial, trials, t) if o.key not in done_keys]
        prediction = self.predict_final(t, [trial] + others)
        if prediction is None:
            return self.no_model(t)
        mean = self.sign * prediction[0]
        scores = np.concatenate([mean, self.sign * np.array([d.curve[self.max_epochs - 1] for d in done])])
        threshold = np.quantile(scores, 1.0 - self.keep_fraction)
        keep = mean[0] >= threshold
        predicted, std, cut = float(prediction[0][0]), float(prediction[1][0]), float(self.sign * threshold)
        place = "within" if keep else "outside"
        return Verdict(
            Decision.CONTINUE if keep else Decision.STOP,
            t,
            f"predicted final {predicted:.4g} ± {std:.2g} ranks {place} the best {self.keep_fraction:.0%} of "
            f"{len(scores)} trials at epoch {t} (cut-off {cut:.4g})",
            predicted=predicted,
            std=std,
            threshold=cut,
        )
