"""What every predictive policy shares: its :class:`PredictionService` and the trial views
turned into the arrays the service reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qhpo._checks import check_int
from qhpo.policies._base import Decision, StoppingPolicy, TrialStatus, TrialView, Verdict
from qhpo.policies._prediction import PredictionService


def finite_prefix(trial: TrialView, t: int) -> bool:
    """Whether the first ``t`` values of the trial's curve are finite numbers."""
    return trial.finite_epochs >= min(t, trial.epochs)


def completed_trials(trials: Sequence[TrialView], max_epochs: int) -> list[TrialView]:
    """Trials trained to ``max_epochs`` with finite values (a predictor's training data)."""
    return [
        t
        for t in trials
        if t.status == TrialStatus.COMPLETE and t.epochs >= max_epochs and finite_prefix(t, max_epochs)
    ]


def _number(value) -> float:
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    return float("nan")


class NumericHyperparameters:
    """The numeric hyperparameters of trial views as a matrix, in one column order for good.

    The columns are the sorted names of the numeric values of the first view that has
    parameters, fixed at the first call that sees one; a missing or non-numeric value takes
    its column's median over the views encoded together.

    Example:
        >>> encode = NumericHyperparameters()
        >>> encode([TrialView(0, [], {"lr": 0.1, "opt": "sgd"}), TrialView(1, [], {"lr": 0.3})]).tolist()
        [[0.1], [0.3]]
        >>> encode.names
        ['lr']
    """

    def __init__(self) -> None:
        self.names: list[str] | None = None

    def __call__(self, views: Sequence[TrialView]) -> np.ndarray:
        if self.names is None:
            first = next((v.params for v in views if v.params), None)
            if first is None:
                return np.zeros((len(views), 0))
            self.names = sorted(
                k for k, v in first.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            )
        x = np.array([[_number(v.params.get(k)) for k in self.names] for v in views], dtype=float)
        x = x.reshape(len(views), len(self.names))
        if x.size and not np.all(np.isfinite(x)):
            fill = np.nan_to_num(np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0))
            x = np.where(np.isfinite(x), x, fill)
        return x


class PredictivePolicy(StoppingPolicy):
    """A stopping policy whose decisions read predicted final values.

    Args:
        max_epochs: Epochs of a trial that is never stopped.
        mode: ``"max"`` or ``"min"``.
        predictor: ``"svr"``, ``"qsvr"``, ``"qsvr-ensemble"`` or an estimator object.
        sampler: ``dimod.Sampler`` or sampler name for the annealer models.
        random_state: Seed of the predictors.
        background: Fit predictors in a worker thread (Optuna, Ray) instead of inline
            (replay, deterministic).
        service: An existing :class:`PredictionService` to share (overrides the four
            arguments above).
        min_completed: Trials that must complete before any trial is stopped; the first
            trials therefore run to the end and become the predictor's training data.
        differences: Predictor features include first and second curve differences.
        hyperparameters: Predictor features include the numeric hyperparameters.
        relative: The predictor learns the change after the decision epoch.
        anchor_window: With ``relative``, the change is measured from the mean of the
            last ``anchor_window`` epochs of the prefix (smoothing single-epoch noise).
    """

    def __init__(
        self,
        *,
        max_epochs: int,
        mode: str = "max",
        predictor: Any = "svr",
        sampler: Any = None,
        random_state: int | None = None,
        background: bool = False,
        service: PredictionService | None = None,
        min_completed: int = 10,
        differences: bool = False,
        hyperparameters: bool = False,
        relative: bool = False,
        anchor_window: int = 1,
    ):
        super().__init__(max_epochs=max_epochs, mode=mode)
        self.min_completed = check_int("min_completed", min_completed, least=2)
        self.service = (
            service
            if service is not None
            else PredictionService(
                predictor,
                sampler=sampler,
                background=background,
                random_state=random_state,
                differences=differences,
                hyperparameters=hyperparameters,
                relative=relative,
                anchor_window=anchor_window,
                min_curves=min(5, int(min_completed)),
            )
        )
        self._synced_count = -1
        self._encode = NumericHyperparameters()

    # -- views -> arrays -------------------------------------------------------------------
    def completed(self, trials: Sequence[TrialView]) -> list[TrialView]:
        """Trials trained to ``max_epochs`` with finite values (the predictor's training data)."""
        return completed_trials(trials, self.max_epochs)

    @property
    def prediction_service(self) -> PredictionService:
        return self.service

    @staticmethod
    def rivals(trial: TrialView, trials: Sequence[TrialView], t: int) -> list[TrialView]:
        """The other trials that reached epoch ``t`` with finite values (failed ones excluded)."""
        return [
            o
            for o in trials
            if o.key != trial.key and o.status != TrialStatus.FAILED and o.epochs >= t and finite_prefix(o, t)
        ]

    def screen(self, trial: TrialView, trials: Sequence[TrialView], t: int):
        """The verdict at epoch ``t`` before any prediction, and the completed trials.

        Returns ``(STOP, [])`` for a non-finite prefix (a diverged curve never recovers),
        ``(CONTINUE, done)`` while fewer than ``min_completed`` trials are complete, and
        ``(None, done)`` when the policy has to predict.
        """
        if not finite_prefix(trial, t):
            return Verdict(Decision.STOP, t, f"the curve is not finite within its first {t} epochs"), []
        done = self.sync(trials)
        if len(done) < self.min_completed:
            return Verdict(
                Decision.CONTINUE,
                t,
                f"{len(done)} of the {self.min_completed} trials that must complete before any stop have completed",
            ), done
        return None, done

    @staticmethod
    def no_model(t: int) -> Verdict:
        """CONTINUE while the predictor for epoch ``t`` is not fitted yet."""
        return Verdict(Decision.CONTINUE, t, f"no predictor for epoch {t} is fitted yet")

    def sync(self, trials: Sequence[TrialView]) -> list[TrialView]:
        """Hand the completed curves to the service (only when their number changed)."""
        done = self.completed(trials)
        if len(done) != self._synced_count:
            curves = np.array([np.asarray(t.curve[: self.max_epochs], dtype=float) for t in done]).reshape(
                len(done), self.max_epochs
            )
            self.service.update(curves, self.param_matrix(done) if self.service.hyperparameters else None)
            self._synced_count = len(done)
        return done

    def param_matrix(self, trials: Sequence[TrialView]) -> np.ndarray:
        """Numeric hyperparameters of ``trials`` in a fixed column order (:class:`NumericHyperparameters`)."""
        return self._encode(trials)

    def predict_final(self, t: int, trials: Sequence[TrialView]):
        """Predicted final ``(mean, std)`` of each trial from its first ``t`` epochs, or None."""
        if not trials:
            return np.zeros(0), np.zeros(0)
        prefixes = np.array([np.asarray(tr.curve[:t], dtype=float) for tr in trials])
        params = self.param_matrix(trials) if self.service.hyperparameters else None
        return self.service.predict(t, prefixes, params, target=self.max_epochs, keys=[tr.key for tr in trials])
