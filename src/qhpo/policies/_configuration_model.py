"""The configuration model of the default policy: the value a trial reaches, predicted
from its hyperparameters alone (as Bayesian optimisation keeps it), an option of
:meth:`qhpo.policies.PredictiveHalving.promote`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from qhpo.policies._base import TrialStatus, TrialView
from qhpo.policies._predictive import completed_trials, finite_prefix
from qhpo.policies._rungs import Judgement, RungStanding
from qhpo.predictors import classical_svr


class ConfigurationModel:
    """``q(x)``: an RBF SVR of a trial's value at epoch ``h`` on its hyperparameters alone
    (numbers min-max scaled, categories one-hot), refitted when the trials it learns from change.

    Args:
        rule: ``"rank"`` (the score is the rank of ``q``) or ``"average"`` (its mean with
            the rank of the observed anchor).
        budget: ``"final"``: learn the final value from the completed trials; ``"deepest"``:
            learn the value at the deepest rung (or ``E``) that ``min_trials`` trials reached.
        max_epochs, rungs, min_trials, sign: the policy's.
    """

    def __init__(self, rule: str, budget: str, *, max_epochs: int, rungs: Sequence[int], min_trials: int, sign: float):
        self.rule, self.budget = rule, budget
        self.max_epochs, self.rungs, self.min_trials, self.sign = max_epochs, tuple(rungs), min_trials, sign
        # the fitted model and the keys of the trials it was fitted on
        self._fitted: tuple[tuple, Any, Any, np.ndarray, np.ndarray] | None = None

    def data(self, trials: Sequence[TrialView]) -> tuple[int, list[TrialView]]:
        """The epoch whose values the configuration model learns, and the trials it learns
        them from: ``E`` and the completed trials (``configuration_budget="final"``), or the
        deepest rung (or ``E``) that ``min_horizon_trials`` trials have reached and those trials."""
        if self.budget == "final":
            return self.max_epochs, completed_trials(trials, self.max_epochs)
        for h in (self.max_epochs, *reversed(self.rungs)):
            reached = [o for o in trials if o.status != TrialStatus.FAILED and o.epochs >= h and finite_prefix(o, h)]
            if len(reached) >= self.min_trials:
                return h, reached
        return self.max_epochs, []

    def score(self, standing: RungStanding, trials: Sequence[TrialView]) -> np.ndarray | None:
        """The configuration rule's score of each peer of ``standing`` (higher is better):
        the rank of ``q(x)``, or its mean with the anchor's rank; None while no
        configuration model exists."""
        q = self.values(standing.group.peers, trials)
        if q is None:
            return None
        if self.rule == "rank":
            return rankdata(q)
        return (rankdata(q) + rankdata(standing.anchors)) / 2

    def amend(self, judgement: Judgement, score: np.ndarray, k: int, keep: int) -> Judgement:
        """``judgement`` of member ``k``, kept too when its ``score`` ranks within the best ``keep``."""
        if judgement.keep or not bool(score[k] >= np.sort(score)[::-1][keep - 1]):
            return judgement
        what = "final value predicted from its hyperparameters"
        if self.rule == "average":
            what = "mean rank of its observed value and its " + what
        return judgement._replace(keep=True, reason=f"{judgement.reason}; the {what} ranks within the best {keep}")

    def values(self, peers: Sequence[TrialView], trials: Sequence[TrialView]) -> np.ndarray | None:
        """``q(x)`` of ``peers`` (higher is better), from the model fitted on the trials of
        :meth:`_configuration_data`; None while they are fewer than ``min_horizon_trials``
        or no hyperparameter gives a column."""
        from qhpo.curves import HyperparameterEncoder

        h, done = self.data(trials)
        if len(done) < self.min_trials:
            return None
        keys = (h, *(o.key for o in done))
        if self._fitted is None or self._fitted[0] != keys:
            encoder = HyperparameterEncoder().fit([dict(o.params) for o in done])
            x = encoder.transform([dict(o.params) for o in done])
            if x.shape[1] == 0:
                self._fitted = (keys, None, None, x, x)
            else:
                y = self.sign * np.array([float(o.curve[h - 1]) for o in done])
                low, span = x.min(axis=0), np.ptp(x, axis=0)
                span = np.where(span > 0, span, 1.0)
                model = classical_svr().fit((x - low) / span, (y - y.min()) / (float(np.ptp(y)) or 1.0))
                self._fitted = (keys, encoder, model, low, span)
        _, encoder, model, low, span = self._fitted
        if model is None:
            return None
        return model.predict((encoder.transform([dict(o.params) for o in peers]) - low) / span)


class ConfigurationScore:
    """The rung score of ``configuration_weight``: at the rungs up to
    :data:`qhpo.priors.MAX_SHARE` of training, the peers are ranked by

        score = (1 - w) * Q(a) + w * Q(q(x)),

    ``Q`` the quantile among the peers, ``a`` the anchor and ``q`` the
    :class:`ConfigurationModel`'s value from the hyperparameters alone; the anchors are dealt
    out again in that order (:meth:`RungStanding.rerank`). While no model exists (too few
    trials reached the epoch it learns) the rung ranks on the anchors alone.

    Args:
        model: The configuration model (its ``budget`` says what it learns).
        weight: ``w``, in (0, 1].
        max_epochs: ``E``.
    """

    def __init__(self, model: ConfigurationModel, weight: float, max_epochs: int):
        from qhpo.priors import MAX_SHARE

        self.model, self.weight, self.max_epochs = model, float(weight), int(max_epochs)
        self.last_rung = MAX_SHARE * self.max_epochs

    def acts_at(self, t: int) -> bool:
        """Whether the score ranks the peers at rung ``t``."""
        return t <= self.last_rung

    def apply(self, standing: RungStanding, trials: Sequence[TrialView]) -> None:
        """Rank ``standing`` by the score, where it acts and a model exists."""
        if not self.acts_at(standing.t) or standing.m < 2:
            return
        q = self.model.values(standing.group.peers, trials)
        if q is None:
            return
        from qhpo.priors import quantiles

        by_configuration = quantiles(np.asarray(q, dtype=float))
        score = (1.0 - self.weight) * quantiles(standing.anchors) + self.weight * by_configuration
        standing.rerank(score, "hyperparameter model", by_configuration)
