"""qhpo's default policy: asynchronous successive halving that promotes on the observed or
the predicted value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from qhpo.policies._base import Decision, TrialView, Verdict
from qhpo.policies._prediction import PredictionService
from qhpo.policies._predictive import PredictivePolicy, finite_prefix


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
    """Asynchronous successive halving that promotes a trial on its observed *or* its
    predicted value.

    Rungs sit at ``r_k = min_resource * eta**k < E``. All values are taken in "higher is
    better" units ``v = sign * c`` and floored at ``f``, the ``floor_quantile`` quantile of
    the first ``r_k`` values of the trials at the rung (a diverging curve's huge losses
    then weigh no more than an ordinary bad curve's). When a trial reaches ``r_k``, with
    ``m`` trials (it included) at the rung and ``n = max(1, floor(m / eta))``, it continues
    when either

    * **observed:** its anchor ``a = mean(v_{r_k-w+1} .. v_{r_k})`` (``w = anchor_window``)
      is among the ``n`` best anchors at the rung (successive halving, as in ASHA, on a
      smoothed value); or
    * **predicted** (from rung ``first_predicted_rung`` on): its predicted value at the
      horizon ``h``,
      ``mu = a + g(v_1..v_{r_k}, x)``, is among the ``n`` best predictions at the rung.
      ``h`` is the next rung (or ``E``) that at least ``min_horizon_trials`` trials have
      reached; ``g`` is the QSVR (or SVR) trained on *every* trial that reached ``h``
      (running, stopped or complete), with the floored prefix and the numeric
      hyperparameters ``x`` as features and the change ``v_h - a`` as target, refitted as
      trials reach ``h``.

    A trial whose curve holds NaN or inf stops at its next rung. While no model exists
    for ``h`` (too few trials there, or the first background fit still running) the
    observed rule decides alone, which is plain successive halving. The predicted rule
    keeps the trials whose curves start slowly but whose hyperparameters and shape
    resemble those that went on to lead; the observed rule keeps the leaders the model
    would regress to the mean.

    Example:
        >>> from qhpo.policies import make_policy
        >>> make_policy("qhpo", max_epochs=200).decision_epochs()
        (10, 20, 40, 80, 160)

    Args:
        min_resource: First rung in epochs (default ``max_epochs / 20``).
        reduction_factor: ``eta``: the growth of the rungs and the inverse of the share
            each rule promotes.
        first_predicted_rung: Index of the first rung at which the predicted rule may
            promote (0: every rung; default 1: the first rung, where the model has seen
            least, is left to the observed rule).
        min_horizon_trials: Trials that must have reached an epoch before the predictor
            targets it.
        floor_quantile: Quantile of the rung's values below which values are floored.
        anchor_window: Epochs averaged into the anchor ``a`` (default
            ``min_resource / 2``).
        hyperparameters: Predictor features include the numeric hyperparameters.
        min_completed: Trials that must complete before any trial is stopped (default 0:
            successive halving needs none; ``qhpo run`` sets a few so that its first
            trials show full curves).
        **kwargs: ``predictor``, ``sampler``, ``random_state``, ``background`` (see
            :class:`qhpo.policies.PredictivePolicy`).
    """

    name = "qhpo"

    def __init__(
        self,
        *,
        max_epochs: int,
        mode: str = "max",
        min_resource: int | None = None,
        reduction_factor: float = 2.0,
        first_predicted_rung: int = 1,
        min_horizon_trials: int = 6,
        floor_quantile: float = 0.1,
        anchor_window: int | None = None,
        hyperparameters: bool = True,
        min_completed: int = 0,
        predictor: Any = "svr",
        sampler: Any = None,
        random_state: int | None = None,
        background: bool = False,
        service: PredictionService | None = None,
    ):
        if min_resource is None:
            min_resource = max(1, round(int(max_epochs) / 20))
        if int(min_resource) < 1:
            raise ValueError(f"min_resource must be at least 1 epoch, got {min_resource}")
        if anchor_window is None:
            anchor_window = max(1, round(int(min_resource) / 2))
        if int(anchor_window) < 1:
            raise ValueError(f"anchor_window must be at least 1 epoch, got {anchor_window}")
        if not float(reduction_factor) > 1.0:
            raise ValueError(f"reduction_factor must be greater than 1, got {reduction_factor}")
        if int(first_predicted_rung) < 0:
            raise ValueError(f"first_predicted_rung must be at least 0, got {first_predicted_rung}")
        if int(min_horizon_trials) < 3:
            raise ValueError(f"min_horizon_trials must be at least 3 trials, got {min_horizon_trials}")
        if not 0.0 <= float(floor_quantile) < 1.0:
            raise ValueError(f"floor_quantile must be in [0, 1), got {floor_quantile}")
        if int(min_completed) < 0:
            raise ValueError(f"min_completed must be at least 0 trials, got {min_completed}")
        if service is None:
            service = PredictionService(
                predictor,
                sampler=sampler,
                background=background,
                random_state=random_state,
                hyperparameters=hyperparameters,
                relative=True,
                anchor_window=int(anchor_window),
                min_curves=int(min_horizon_trials),
                step=5,
                error_estimate=False,
            )
        super().__init__(max_epochs=max_epochs, mode=mode, service=service)
        self.min_completed = int(min_completed)
        self.min_resource = int(min_resource)
        self.reduction_factor = float(reduction_factor)
        self.min_horizon_trials = int(min_horizon_trials)
        self.first_predicted_rung = int(first_predicted_rung)
        self.floor_quantile = float(floor_quantile)
        self.anchor_window = int(anchor_window)
        self.rungs = rung_epochs(self.max_epochs, self.min_resource, self.reduction_factor)

    def decision_epochs(self) -> Sequence[int]:
        return self.rungs

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        t = trial.epochs
        if t not in self.rungs:
            return Verdict(Decision.CONTINUE, t, f"epoch {t} is not a rung")
        if not finite_prefix(trial, t):
            return Verdict(Decision.STOP, t, f"the curve is not finite within its first {t} epochs")
        if self.min_completed:
            done = len(self.completed(trials))
            if done < self.min_completed:
                return Verdict(
                    Decision.CONTINUE,
                    t,
                    f"{done} of the {self.min_completed} trials that must complete before any stop have completed",
                )
        peers = [trial] + self.rivals(trial, trials, t)
        values = self.sign * np.array([np.asarray(p.curve[:t], dtype=float) for p in peers])
        floor = float(np.quantile(values, self.floor_quantile))
        anchors = np.maximum(values, floor)[:, max(0, t - self.anchor_window) :].mean(axis=1)
        keep = max(1, math.floor(len(peers) / self.reduction_factor))
        ranked = f"the best {keep} of {len(peers)} at rung {t}"
        cut = float(np.sort(anchors)[::-1][keep - 1])
        if anchors[0] >= cut:
            return Verdict(
                Decision.CONTINUE,
                t,
                f"observed value {self.sign * anchors[0]:.4g} ranks within {ranked}",
                threshold=self.sign * cut,
            )
        if self.rungs.index(t) < self.first_predicted_rung:
            return Verdict(
                Decision.STOP,
                t,
                f"observed value {self.sign * anchors[0]:.4g} ranks outside {ranked} (cut-off {self.sign * cut:.4g})",
                threshold=self.sign * cut,
            )
        horizon = self._horizon(t, trials)
        prediction = None if horizon is None else self._predict(t, horizon, peers, trials, floor)
        if prediction is None:
            return Verdict(
                Decision.STOP,
                t,
                f"observed value {self.sign * anchors[0]:.4g} ranks outside {ranked} "
                f"(cut-off {self.sign * cut:.4g}); no predictor is fitted yet",
                threshold=self.sign * cut,
            )
        mu, std = prediction
        mu_cut = float(np.sort(mu)[::-1][keep - 1])
        stated = (
            f"observed value {self.sign * anchors[0]:.4g} ranks outside {ranked}; "
            f"predicted value at epoch {horizon} {self.sign * mu[0]:.4g}"
        )
        decision = Decision.CONTINUE if mu[0] >= mu_cut else Decision.STOP
        where = "within" if decision == Decision.CONTINUE else "outside"
        return Verdict(
            decision,
            t,
            f"{stated} ranks {where} {ranked} (cut-off {self.sign * mu_cut:.4g})",
            predicted=self.sign * float(mu[0]),
            std=float(std[0]),
            threshold=self.sign * mu_cut,
        )

    def _horizon(self, t: int, trials: Sequence[TrialView]) -> int | None:
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
        self.service.update(pool, self._hyperparameters(trials) if hyper else None)
        prefixes = np.maximum(self.sign * np.array([np.asarray(p.curve[:t], dtype=float) for p in peers]), floor)
        return self.service.predict(t, prefixes, self._hyperparameters(peers) if hyper else None, target=horizon)

    def _hyperparameters(self, views: Sequence[TrialView]) -> np.ndarray:
        """Numeric hyperparameters in a fixed column order; a missing value takes its column's median."""
        if self._param_names is None:
            first = next((v.params for v in views if v.params), {})
            self._param_names = sorted(
                k for k, v in first.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            )
        x = np.array([[_number(v.params.get(k)) for k in self._param_names] for v in views], dtype=float)
        x = x.reshape(len(views), len(self._param_names))
        if x.size and not np.all(np.isfinite(x)):
            fill = np.nan_to_num(np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)) if len(x) else 0.0
            x = np.where(np.isfinite(x), x, fill)
        return x


def _number(value) -> float:
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    return float("nan")
