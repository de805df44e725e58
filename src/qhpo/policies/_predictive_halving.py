"""qhpo's default policy: asynchronous successive halving that promotes on the observed or
the predicted value."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from qhpo._checks import check_int
from qhpo.policies._base import Decision, Resumption, TrialStatus, TrialView, Verdict
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

    With ``resume`` on (``qhpo``, the default) the two rules act at different moments. At
    the rung the observed rule alone decides, and a trial it does not keep is **paused**
    (:attr:`Decision.PAUSE`, its checkpoint kept). :meth:`promote` then fills the places
    the observed rule left free: while fewer than ``n`` trials (counted now) have gone on
    from a rung, the paused trials there whose anchor or predicted value ranks within the
    best ``n`` resume, best first. The prediction is thus read later, with more trials at
    the rung and a predictor refitted on more curves, and a wrong early pause costs a
    delay, not the configuration. With ``resume`` off (``qhpo-stop``) both rules decide at
    the rung and a trial that neither keeps stops for good.

    With ``first_rung_test = K`` the first ``K`` trials (in the order of ``trials``) pass
    the first rung unjudged and test it: once each has reached the second rung or ended,
    the Spearman correlation between their anchors at the two rungs decides. At 0.5 or
    above the first rung stays; below it (after one epoch, say, the runs rank at random)
    it is switched off for every later trial. A trial that passed the first rung unjudged
    (a tester, or every trial once it is off) is judged at the second rung among the
    others that did, with the share of two rungs, ``max(1, floor(m / eta**2))``, so that
    skipping a rung does not let more trials through the later ones.

    A trial whose curve holds NaN or inf stops at its next rung (never paused). While no model exists
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
        resume: Pause the trials the rules do not keep, and resume them through
            :meth:`promote` (False: stop them, as ``qhpo-stop`` does).
        first_rung_test: Trials that pass the first rung unjudged to test whether its
            ranking agrees with the second rung's (default 0: no test, the first rung
            always decides).
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
        resume: bool = True,
        first_rung_test: int = 0,
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
        if int(first_rung_test) < 0:
            raise ValueError(f"first_rung_test must be at least 0 trials, got {first_rung_test}")
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
        self.resume = bool(resume)
        # per rung: what promote() last read there (the model version included) when it resumed no one
        self._unchanged: dict[int, tuple] = {}
        self.min_resource = int(min_resource)
        self.reduction_factor = float(reduction_factor)
        self.min_horizon_trials = int(min_horizon_trials)
        self.first_predicted_rung = int(first_predicted_rung)
        self.floor_quantile = float(floor_quantile)
        self.anchor_window = int(anchor_window)
        self.rungs = rung_epochs(self.max_epochs, self.min_resource, self.reduction_factor)
        self.first_rung_test = int(first_rung_test) if len(self.rungs) >= 2 else 0
        self.first_rung_correlation: float | None = None  # of the test, once it has ended
        self._first_rung: bool | None = None if self.first_rung_test else True
        self._testers: frozenset = frozenset()  # their keys, fixed when the test ends

    def first_rung_on(self, trials: Sequence[TrialView]) -> bool | None:
        """Whether the first rung decides: True or False once the test has ended (always
        True without a test), None while a tester has yet to reach the second rung."""
        if self._first_rung is not None:
            return self._first_rung
        r0, r1 = self.rungs[0], self.rungs[1]
        testers = trials[: self.first_rung_test]
        if len(testers) < self.first_rung_test:
            return None
        reached = []
        for o in testers:
            if o.epochs >= r1 and finite_prefix(o, r1):
                reached.append(o)
            elif o.status in (TrialStatus.RUNNING, TrialStatus.PAUSED) and finite_prefix(o, o.epochs):
                return None  # still on its way to the second rung
        self._testers = frozenset(o.key for o in testers)
        if len(reached) < 3:
            self._first_rung = True
            return True
        w = self.anchor_window
        a = [float(np.mean(np.asarray(o.curve[max(0, r0 - w) : r0], dtype=float))) for o in reached]
        b = [float(np.mean(np.asarray(o.curve[max(0, r1 - w) : r1], dtype=float))) for o in reached]
        from scipy.stats import spearmanr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant side: NaN, taken as 0 below
            rho = float(spearmanr(a, b).statistic)
        rho = rho if np.isfinite(rho) else 0.0  # a constant side says nothing about the ranking
        self.first_rung_correlation = rho
        self._first_rung = bool(rho >= 0.5)
        return self._first_rung

    def _unjudged(self, view: TrialView, trials: Sequence[TrialView], index: int | None = None) -> bool:
        """Whether ``view`` passed the first rung without a judgement (a tester, or the
        first rung is off)."""
        if not self.first_rung_test:
            return False
        on = self.first_rung_on(trials)
        if on is False:
            return True
        if on is True:
            return view.key in self._testers
        if index is None:
            index = next((i for i, o in enumerate(trials) if o.key == view.key), len(trials))
        return index < self.first_rung_test

    @property
    def resumes(self) -> bool:
        return self.resume

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
                # held running by the start-up rule: the adapter keeps the epoch in the trial's view
                # (TrialView.unranked), and the trial takes no place at this rung
                return Verdict(
                    Decision.CONTINUE,
                    t,
                    f"{done} of the {self.min_completed} trials that must complete before any stop have completed",
                    ranked=False,
                )
        share = self.reduction_factor
        peers = [trial] + self.rivals(trial, trials, t)
        if self.first_rung_test and t in self.rungs[:2] and self._unjudged(trial, trials):
            if t == self.rungs[0]:
                on = self.first_rung_on(trials)
                why = "tests the first rung" if on is not False else "the first rung is off"
                if on is False:
                    why += f" (Spearman {self.first_rung_correlation:.2f} with the second rung over the tests)"
                return Verdict(Decision.CONTINUE, t, f"passes rung {t} unjudged: it {why}")
            index = {o.key: i for i, o in enumerate(trials)}
            peers = [trial] + [o for o in peers[1:] if self._unjudged(o, trials, index.get(o.key, len(trials)))]
            share = self.reduction_factor**2
        # with resumption on, the predicted rule waits for promote(): a paused trial costs nothing
        # until a place at the rung falls free, and by then more trials show where the rung stands
        standing = self._standing(t, peers, trials, predict=[] if self.resume else [0], share=share)
        keep, reason, predicted, std, threshold, _ = standing.judge(0)
        if keep:
            return Verdict(Decision.CONTINUE, t, reason, predicted=predicted, std=std, threshold=threshold)
        if self.resume:
            return Verdict(
                Decision.PAUSE,
                t,
                f"observed value {self.sign * standing.anchors[0]:.4g} ranks outside the best {standing.keep} of "
                f"{standing.m} at rung {t} (cut-off {self.sign * standing.cut:.4g}); paused until a place there "
                "falls free",
                threshold=self.sign * standing.cut,
            )
        return Verdict(Decision.STOP, t, reason, predicted=predicted, std=std, threshold=threshold)

    def promote(self, trials: Sequence[TrialView], *, limit: int = 1) -> list[Resumption]:
        """The paused trials to resume now: at each rung, while fewer trials have gone on
        from it than its share, the best of those it paused that rank within that share.

        At rung ``r`` with ``m`` trials now (paused ones included), the share is ``n =
        max(1, floor(m / eta))``; ``p`` trials have gone on from it (trained past ``r``, or
        running or complete at ``r``; a trial that went on from ``r`` only because fewer than
        ``min_completed`` trials had completed, ``r`` in its :attr:`TrialView.unranked`, takes
        no place there). While ``p < n``, up to ``n - p`` paused trials
        resume, best first, among those whose anchor or (from ``first_predicted_rung`` on)
        whose value predicted at the horizon by the refitted predictor ranks within the
        best ``n`` of the ``m``. Resumptions are listed from the highest rung down, then
        best value first, then in the order of ``trials`` (deterministic for a seed).
        """
        limit = check_int("limit", limit, least=0)
        if not self.resume or limit == 0:
            return []
        paused: dict[int, list[int]] = {}
        for i, view in enumerate(trials):
            if view.status == TrialStatus.PAUSED and 0 < view.epochs < self.max_epochs:
                if finite_prefix(view, view.epochs):
                    paused.setdefault(view.epochs, []).append(i)
        found: list[tuple[int, float, int, Resumption]] = []
        for t in sorted(paused, reverse=True):
            peers = [o for o in trials if o.status != TrialStatus.FAILED and o.epochs >= t and finite_prefix(o, t)]
            groups = [(t, paused[t], peers, self.reduction_factor)]
            if self.first_rung_test and t == self.rungs[1]:
                # the trials that passed the first rung unjudged are ranked among themselves, with two rungs' share
                index = {o.key: i for i, o in enumerate(trials)}
                unjudged = {o.key for o in peers if self._unjudged(o, trials, index[o.key])}
                groups = [
                    (t, [i for i in paused[t] if trials[i].key not in unjudged], peers, self.reduction_factor),
                    (
                        -t,
                        [i for i in paused[t] if trials[i].key in unjudged],
                        [o for o in peers if o.key in unjudged],
                        self.reduction_factor**2,
                    ),
                ]
            for tag, members_at, group, share in groups:
                if members_at:
                    found.extend(self._resumable(t, tag, members_at, group, share, trials))
            if len(found) >= limit:
                break
        found.sort(key=lambda item: item[:3])
        return [item[3] for item in found[:limit]]

    def _resumable(self, t, tag, members_at, peers, share, trials) -> list:
        """``(-t, -value, i, Resumption)`` of the paused trials ``members_at`` (indices in
        ``trials``) to resume from rung ``t``, ranked among ``peers`` with ``share``."""
        gone_on = sum(
            1
            for o in peers
            if t not in o.unranked and (o.epochs > t or o.status in (TrialStatus.RUNNING, TrialStatus.COMPLETE))
        )
        places = max(1, math.floor(len(peers) / share)) - gone_on
        if places <= 0:
            return []
        # skip the ranking when nothing it reads has changed since it resumed no one here: the
        # trials at the rung, the paused ones, the free places, the horizon, the curves that
        # reached it, and the predictor's model (a background fit that landed since is read)
        horizon = self._horizon(t, trials)
        reached = 0 if horizon is None else sum(1 for o in trials if o.epochs >= horizon)
        state = (
            frozenset(o.key for o in peers),
            frozenset(trials[i].key for i in members_at),
            places,
            horizon,
            reached,
        )
        if self._unchanged.get(tag) == (state, self.service.version):
            return []
        index = {id(o): k for k, o in enumerate(peers)}
        members = [index[id(trials[i])] for i in members_at]
        standing = self._standing(t, peers, trials, predict=members, share=share)
        here = []
        for i, k in zip(members_at, members, strict=True):
            keep, reason, predicted, std, threshold, value = standing.judge(k)
            if keep:
                reason += f"; {places} of the {standing.keep} places at rung {t} are free"
                resumption = Resumption(trials[i].key, t, reason, predicted=predicted, std=std, threshold=threshold)
                here.append((-t, -value, i, resumption))
        if not here:
            self._unchanged[tag] = (state, self.service.version)
        here.sort(key=lambda item: item[:3])
        return here[:places]

    def _standing(
        self, t: int, peers: Sequence[TrialView], trials: Sequence[TrialView], *, predict, share: float | None = None
    ) -> _Standing:
        """The ranking of ``peers`` (the trials at rung ``t`` judged together) by anchor
        and, for the members listed in ``predict`` that rank outside on their anchor, by
        prediction; the best ``max(1, floor(m / share))`` are kept (``share``: eta)."""
        values = self.sign * np.array([np.asarray(p.curve[:t], dtype=float) for p in peers])
        floor = float(np.quantile(values, self.floor_quantile))
        anchors = np.maximum(values, floor)[:, max(0, t - self.anchor_window) :].mean(axis=1)
        keep = max(1, math.floor(len(peers) / (share or self.reduction_factor)))
        cut = float(np.sort(anchors)[::-1][keep - 1])
        standing = _Standing(self, t, len(peers), keep, anchors, cut)
        if standing.first_predicted and any(anchors[k] < cut for k in predict):
            standing.horizon = self._horizon(t, trials)
            if standing.horizon is not None:
                standing.prediction = self._predict(t, standing.horizon, peers, trials, floor)
        return standing

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


class PredictiveHalvingStop(PredictiveHalving):
    """:class:`PredictiveHalving` with resumption off: the trials it does not keep stop for
    good (``qhpo-stop``; the same decisions as ``qhpo`` up to the first resumption)."""

    name = "qhpo-stop"

    def __init__(self, **kwargs: Any):
        if kwargs.pop("resume", False):
            raise ValueError("policy 'qhpo-stop' never resumes a trial; use policy 'qhpo' to resume")
        super().__init__(resume=False, **kwargs)


class _Standing:
    """Where the trials at one rung stand: anchors, the cut-off, and predictions if made."""

    def __init__(self, policy: PredictiveHalving, t: int, m: int, keep: int, anchors: np.ndarray, cut: float):
        self.policy, self.t, self.m, self.keep, self.anchors, self.cut = policy, t, m, keep, anchors, cut
        self.horizon: int | None = None
        self.prediction = None
        self.first_predicted = t not in policy.rungs or policy.rungs.index(t) >= policy.first_predicted_rung

    def judge(self, k: int):
        """``(keep, reason, predicted, std, threshold, value)`` of peer ``k``; ``value`` is
        the anchor or prediction it was kept on ("higher is better" units)."""
        sign, anchor, t = self.policy.sign, float(self.anchors[k]), self.t
        ranked = f"the best {self.keep} of {self.m} at rung {t}"
        if anchor >= self.cut:
            reason = f"observed value {sign * anchor:.4g} ranks within {ranked}"
            return True, reason, None, None, sign * self.cut, anchor
        outside = f"observed value {sign * anchor:.4g} ranks outside {ranked}"
        if not self.first_predicted:
            return False, f"{outside} (cut-off {sign * self.cut:.4g})", None, None, sign * self.cut, anchor
        if self.prediction is None:
            return (
                False,
                f"{outside} (cut-off {sign * self.cut:.4g}); no predictor is fitted yet",
                None,
                None,
                sign * self.cut,
                anchor,
            )
        mu, std = self.prediction
        mu_cut = float(np.sort(mu)[::-1][self.keep - 1])
        keep = bool(mu[k] >= mu_cut)
        where = "within" if keep else "outside"
        reason = (
            f"{outside}; predicted value at epoch {self.horizon} {sign * mu[k]:.4g} ranks {where} {ranked} "
            f"(cut-off {sign * mu_cut:.4g})"
        )
        return keep, reason, sign * float(mu[k]), float(std[k]), sign * mu_cut, float(mu[k])


def _number(value) -> float:
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    return float("nan")
