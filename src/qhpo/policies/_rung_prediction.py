"""The ranking of the trials at a rung, by anchor and, where it can change a decision, by
the value the predictor expects at the horizon (the predicted rule of the default policy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qhpo.policies._base import TrialView
from qhpo.policies._prediction import PredictionService
from qhpo.policies._predictive import NumericHyperparameters, finite_prefix
from qhpo.policies._rungs import RungGroup, RungStanding


def rung_prediction_service(
    predictor: Any,
    *,
    sampler: Any,
    background: bool,
    random_state: int | None,
    hyperparameters: bool,
    anchor_window: int,
    min_curves: int,
) -> PredictionService:
    """The prediction service of the default policy: the change ``v_h - a`` from the anchor,
    learnt from the floored prefix (and the hyperparameters), refitted every 5 new curves."""
    return PredictionService(
        predictor,
        sampler=sampler,
        background=background,
        random_state=random_state,
        hyperparameters=hyperparameters,
        relative=True,
        anchor_window=anchor_window,
        min_curves=min_curves,
        step=5,
        error_estimate=False,
    )


class RungPrediction:
    """Ranks a rung's trials: :meth:`standing` by anchor, and by ``mu = a + g(v_1..v_t, x)``
    at the horizon ``h`` (:meth:`horizon`) when a trial it is asked about ranks outside on
    its anchor and the rung is one where the predicted rule acts (:meth:`predicts_at`).

    Args:
        service: The prediction service that learns ``g``.
        rungs: The policy's rungs; ``max_epochs`` is ``E``; ``sign`` turns values into
            "higher is better" units.
        floor_quantile, anchor_window: As in :class:`RungStanding`.
        min_horizon_trials: Trials that must have reached an epoch before it is a horizon.
        first_predicted_rung: Index of the first rung where the predicted rule acts.
        ranking: Builds the rung's :class:`RungStanding` (the curve prior's ranking, when
            the policy has one).
    """

    def __init__(
        self,
        service: PredictionService,
        *,
        rungs: Sequence[int],
        max_epochs: int,
        sign: float,
        floor_quantile: float,
        anchor_window: int,
        min_horizon_trials: int,
        first_predicted_rung: int,
        ranking: Callable[..., RungStanding] = RungStanding,
        rescore: Any = None,
    ) -> None:
        self.service = service
        self.rungs = tuple(rungs)
        self.max_epochs, self.sign = max_epochs, sign
        self.floor_quantile, self.anchor_window = floor_quantile, anchor_window
        self.min_horizon_trials, self.first_predicted_rung = min_horizon_trials, first_predicted_rung
        self._encode = NumericHyperparameters()
        self._ranking = ranking
        self.rescore = rescore  # a ConfigurationScore, or None

    def predicts_at(self, t: int) -> bool:
        """Whether the predicted rule may keep trials at rung ``t``."""
        return t not in self.rungs or self.rungs.index(t) >= self.first_predicted_rung

    def standing(self, group: RungGroup, trials: Sequence[TrialView], *, predict: Sequence[int]) -> RungStanding:
        """The ranking of ``group`` by anchor and, when a member listed in ``predict`` ranks
        outside on its anchor, by prediction."""
        standing = self._ranking(
            group, sign=self.sign, floor_quantile=self.floor_quantile, anchor_window=self.anchor_window
        )
        t = group.epoch
        if self.rescore is not None:
            self.rescore.apply(standing, trials)
        if self.predicts_at(t) and any(standing.ranks_outside(k) for k in predict):
            standing.horizon = self.horizon(t, trials)
            if standing.horizon is not None:
                standing.prediction = self._predict(t, standing.horizon, group.peers, trials, standing.floor)
        return standing

    def horizon(self, t: int, trials: Sequence[TrialView]) -> int | None:
        """The first rung after ``t`` (or ``E``) that ``min_horizon_trials`` trials reached."""
        for h in [r for r in self.rungs if r > t] + [self.max_epochs]:
            if sum(1 for o in trials if o.epochs >= h and finite_prefix(o, h)) >= self.min_horizon_trials:
                return h
        return None

    def _predict(self, t, horizon, peers, trials, floor):
        """Predicted floored values at ``horizon`` of ``peers`` (higher is better), or None."""
        pool = np.full((len(trials), self.max_epochs), np.nan)
        for i, o in enumerate(trials):
            c = self.sign * np.asarray(o.curve[: self.max_epochs], dtype=float)
            pool[i, : len(c)] = np.where(np.isfinite(c), np.maximum(c, floor), np.nan)
        hyper = self.service.hyperparameters
        self.service.update(pool, self._encode(trials) if hyper else None)
        prefixes = np.maximum(self.sign * np.array([np.asarray(p.curve[:t], dtype=float) for p in peers]), floor)
        return self.service.predict(
            t, prefixes, self._encode(peers) if hyper else None, target=horizon, keys=[p.key for p in peers]
        )
