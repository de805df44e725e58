"""qhpo's default policy: asynchronous successive halving that promotes on the observed or
the predicted value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.stats import rankdata

from qhpo._checks import Boolean, Interval, Options, check_int, validate_parameters
from qhpo.policies._base import Decision, Resumption, StoppingPolicy, TrialStatus, TrialView, Verdict
from qhpo.policies._configuration_model import ConfigurationModel, ConfigurationScore
from qhpo.policies._curve_prior import rung_ranking
from qhpo.policies._first_rung_test import FirstRungTest
from qhpo.policies._prediction import PredictionService
from qhpo.policies._predictive import completed_trials, finite_prefix
from qhpo.policies._rung_prediction import RungPrediction, rung_prediction_service
from qhpo.policies._rungs import RungGroup, anchors_at, paused_by_rung, peers_at, rung_epochs

__all__ = ["PredictiveHalving", "PredictiveHalvingStop", "rung_epochs"]


class PredictiveHalving(StoppingPolicy):
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

    At the rungs up to 30 % of training the observed rule ranks by a score, not by the anchor
    alone: ``(1 - w) Q(a) + w Q(q(x))`` (``w = configuration_weight``, 0.25), ``Q`` the
    quantile among the peers and ``q`` a model of the value at the deepest rung that
    ``min_horizon_trials`` trials reached from the hyperparameters alone (as BOHB keeps
    one), so that a slow start with the configuration of the runs that lead further on
    keeps its place; the anchors are dealt out again in the score's order
    (:class:`ConfigurationScore`). Until that model exists the anchor alone ranks.

    With ``resume`` on (``qhpo``, the default) the two rules act at different moments. At
    the rung the observed rule alone decides, and a trial it does not keep is **paused**
    (:attr:`Decision.PAUSE`, its checkpoint kept). :meth:`promote` then fills the places
    the observed rule left free: while fewer than ``n`` trials (counted now) have gone on
    from a rung, the paused trials there whose anchor or predicted value ranks within the
    best ``n`` resume, best first. The prediction is thus read later, with more trials at
    the rung and a predictor refitted on more curves, and a wrong early pause costs a
    delay, not the configuration. With ``resume`` off (``qhpo-stop``) both rules decide at
    the rung and a trial that neither keeps stops for good.

    With resumption on, a rung (up to ``quorum_span`` of training) ranks no one until ``quorum``
    trials (4) have reached it:
    the first arrivals pause there, and :meth:`promote` gives the rung's places to the best
    of them once the quorum is there, or as soon as no new configuration follows
    (``more_trials`` False). Asynchronous halving otherwise lets every early arrival at a
    thinly populated rung through (the first always, the second when it beats the first),
    which is where much of its cost goes; waiting costs no epoch, only a delay.

    With ``first_rung_test = K`` the first ``K`` trials (in the order of ``trials``) pass
    the first rung unjudged and test it: once each has reached the second rung or ended,
    the Spearman correlation between their anchors at the two rungs decides. At 0.5 or
    above the first rung stays; below it (after one epoch, say, the runs rank at random)
    it is switched off for every later trial. A trial that passed the first rung unjudged
    (a tester, or every trial once it is off) is judged at the second rung among the
    others that did, with the share of two rungs, ``max(1, floor(m / eta**2))``, so that
    skipping a rung does not let more trials through the later ones.

    With ``configuration_rule`` set (off by default) :meth:`promote` also reads a model of
    the final value from the hyperparameters alone (:class:`ConfigurationModel`): a paused
    trial resumes into a free place when that model's rank (``"rank"``), or its mean with
    the anchor's rank (``"average"``), is within the best ``n`` at the rung; see "Late
    risers" in docs/policies.md.

    **A rung that the next rung contradicts keeps more** (``agreement``, 0.5 by default).
    At a rung ``r`` up to ``agreement_span`` of training (0.3), once ``agreement_pairs``
    trials (12) have reached the next rung, :meth:`rung_agreement` measures the Spearman
    correlation between their anchors at ``r`` and at the next rung. Below ``agreement``
    the rung's order says little about what follows, and it keeps ``max(1, floor(m /
    agreement_share))`` (1.75) of its ``m`` trials instead of ``floor(m / eta)``, at the
    rung and in :meth:`promote`; the reasons say so. The trials measured are those the rung
    already let through, so it costs no epoch. ``qhpo-stop`` and a search under a budget run
    without it (``qhpo._policy_options.BUDGET_QUORUM``).

    **The end of a budget.** Under a budget (the adapters pass the epochs left, ``L``, to
    :meth:`promote`) a search is judged by the best trial it has *finished*; the trials
    still training when the budget ends are cut. With ``endgame_slack = s`` (default 0.25
    full trainings), whenever a worker falls free with trials paused, the paused trial ``c``
    that ranks best among those that can still finish (``E - t_c <= L``, ``t_c`` the epochs
    it trained) resumes *to finish* once ``L <= (E - t_c) + s E``: it trains to its last
    epoch unjudged (:attr:`Resumption.finishing`, kept by the adapters as
    :attr:`TrialView.finishing`), instead of a new configuration that could not finish.
    "Ranks best": its value at ``t_c`` is above the largest share of the trials that reached
    epoch ``t_c`` (ties: the one trained longest, then the earliest). Without a budget
    (``budget_left`` None) it never acts.

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
        configuration_rule: None (default), ``"rank"`` or ``"average"``: :meth:`promote`
            also resumes the paused trials that the final value predicted from their
            hyperparameters alone ranks (alone, or averaged with the anchor's rank)
            within the best ``n`` at the rung.
        configuration_budget: What the configuration model learns: ``"deepest"`` (default)
            the values at the deepest rung (or ``E``) that ``min_horizon_trials`` trials
            have reached, from those trials (the largest budget with enough observations,
            as BOHB fits its model), so that the model exists long before six trials
            complete; ``"final"`` the final values of the completed trials.
        configuration_weight: ``w`` in [0, 1] (default 0.25; 0: off): at the rungs up to
            30 % of training the peers rank by ``(1 - w) Q(a) + w Q(q(x))``, the quantiles
            of the anchor and of the configuration model's value
            (:class:`ConfigurationScore`, learning what ``configuration_budget`` says).
        quorum: Trials that must have reached a rung before it ranks any (default 4; 0 or
            1: every arrival is ranked at once, as in asynchronous successive halving).
            With resumption off it has no effect: a trial cannot wait there.
        quorum_span: The share of training up to which rungs wait for the quorum (default 1:
            every rung; a rung at ``r > quorum_span * E`` epochs ranks each arrival at once),
            so that a search read while it runs sees a finished trial early: under a budget
            ``qhpo`` waits for two trials at the rungs up to 30 % of training
            (``qhpo._policy_options.BUDGET_QUORUM``).
        endgame_slack: ``s`` in full trainings (at least 0; ``"off"`` or None: never) of the
            end of a budget described above (default 0.25; chosen on the design seeds
            100-199, docs/replay.md "Finishing the best paused trial at the end of a budget").
        agreement: The Spearman correlation with the next rung below which a rung keeps
            ``1 / agreement_share`` of its trials (default 0.5; ``"off"`` or None: never;
            chosen on the design seeds 100-199, docs/policies.md "Rungs that the next rung
            contradicts").
        agreement_share: The share's inverse at such a rung (default 1.75; 1 keeps every trial).
        agreement_pairs: Trials that must have reached the next rung before the correlation
            is measured (default 12).
        agreement_span: The share of training up to which rungs measure it (default 0.3).
        predictor, sampler, random_state, background: The predictor's model, annealer,
            seed, and whether it fits in a worker thread (see
            :class:`qhpo.policies.PredictionService`).
        prior, prior_weight: None (default), ``"builtin"``, a prior file, a folder of
            curve tables or a :class:`qhpo.priors.FittedPrior`, and its weight ``alpha``:
            see :class:`qhpo.policies.PriorStanding` (a replay leaves its table out).
        service: A ready :class:`~qhpo.policies.PredictionService` to use instead.
    """

    name = "qhpo"

    _parameter_constraints: dict = {
        "min_resource": [Interval(Integral, 1, None), None],
        "reduction_factor": [Interval(Real, 1, None, closed="neither")],
        "first_predicted_rung": [Interval(Integral, 0, None)],
        "min_horizon_trials": [Interval(Integral, 3, None)],
        "floor_quantile": [Interval(Real, 0, 1, closed="left")],
        "anchor_window": [Interval(Integral, 1, None), None],
        "hyperparameters": [Boolean()],
        "min_completed": [Interval(Integral, 0, None)],
        "resume": [Boolean()],
        "first_rung_test": [Interval(Integral, 0, None)],
        "configuration_rule": [Options("rank", "average"), None],
        "configuration_budget": [Options("final", "deepest")],
        "configuration_weight": [Interval(Real, 0, 1)],
        "prior_weight": [Interval(Real, 0, 1)],
        "quorum": [Interval(Integral, 0, None)],
        "quorum_span": [Interval(Real, 0, 1, closed="right")],
        "endgame_slack": [Interval(Real, 0, None, closed="left"), Options("off", "none"), None],
        "agreement": [Interval(Real, -1, 1), Options("off", "none"), None],
        "agreement_share": [Interval(Real, 1, None)],
        "agreement_pairs": [Interval(Integral, 3, None)],
        "agreement_span": [Interval(Real, 0, 1, closed="right")],
    }

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
        configuration_rule: str | None = None,
        configuration_budget: str = "deepest",
        configuration_weight: float = 0.25,
        quorum: int = 4,
        quorum_span: float = 1.0,
        endgame_slack: float | str | None = 0.25,
        agreement: float | str | None = 0.5,
        agreement_share: float = 1.75,
        agreement_pairs: int = 12,
        agreement_span: float = 0.3,
        prior: Any = None,
        prior_weight: float = 0.5,
        predictor: Any = "svr",
        sampler: Any = None,
        random_state: int | None = None,
        background: bool = False,
        service: PredictionService | None = None,
    ):
        super().__init__(max_epochs=max_epochs, mode=mode)
        options = {k: v for k, v in locals().items() if k in self._parameter_constraints}
        validate_parameters(self._parameter_constraints, options)
        self.min_resource = int(min_resource or max(1, round(self.max_epochs / 20)))
        self.anchor_window = int(anchor_window or max(1, round(self.min_resource / 2)))
        self.reduction_factor = float(reduction_factor)
        self.first_predicted_rung = int(first_predicted_rung)
        self.min_horizon_trials = int(min_horizon_trials)
        self.floor_quantile = float(floor_quantile)
        self.min_completed = int(min_completed)
        self.resume = bool(resume)
        self.configuration_rule, self.configuration_budget = configuration_rule, configuration_budget
        self.configuration_weight = float(configuration_weight)
        self.quorum = int(quorum)
        self.quorum_span = float(quorum_span)
        self.endgame_slack = None if endgame_slack is None or isinstance(endgame_slack, str) else float(endgame_slack)
        self.rungs = rung_epochs(self.max_epochs, self.min_resource, self.reduction_factor)
        self.agreement = None if agreement is None or isinstance(agreement, str) else float(agreement)
        self.agreement_share = float(agreement_share)
        self.agreement_pairs, self.agreement_span = int(agreement_pairs), float(agreement_span)
        self.first_rung_test = int(first_rung_test) if len(self.rungs) >= 2 else 0
        self._test = (
            FirstRungTest(self.first_rung_test, self.rungs[:2], self.anchor_window) if self.first_rung_test else None
        )
        self.service = (
            service
            if service is not None
            else rung_prediction_service(
                predictor,
                sampler=sampler,
                background=background,
                random_state=random_state,
                hyperparameters=bool(hyperparameters),
                anchor_window=self.anchor_window,
                min_curves=self.min_horizon_trials,
            )
        )
        self.prior, self.prior_weight = prior, float(prior_weight)
        # one model of the hyperparameters, read by the rung score and by promote's configuration rule
        self._model = self._hyperparameter_model()
        self._configuration = self._model if configuration_rule is not None else None
        self._ranking = self._rung_prediction()
        # per rung and group: what promote() last read there (the model version included) when it resumed no one
        self._unchanged: dict[tuple[int, str], tuple] = {}

    def _rung_prediction(self) -> RungPrediction:
        score = None
        if self.configuration_weight > 0:
            score = ConfigurationScore(self._model, self.configuration_weight, self.max_epochs)
        return RungPrediction(
            self.service,
            rungs=self.rungs,
            max_epochs=self.max_epochs,
            sign=self.sign,
            floor_quantile=self.floor_quantile,
            anchor_window=self.anchor_window,
            min_horizon_trials=self.min_horizon_trials,
            first_predicted_rung=self.first_predicted_rung,
            ranking=rung_ranking(self.prior, self.prior_weight, self.max_epochs),
            rescore=score,
        )

    def _hyperparameter_model(self) -> ConfigurationModel | None:
        if self.configuration_rule is None and self.configuration_weight <= 0:
            return None
        return ConfigurationModel(
            self.configuration_rule or "rank",  # the rule is read by promote's configuration rule only
            self.configuration_budget,
            max_epochs=self.max_epochs,
            rungs=self.rungs,
            min_trials=self.min_horizon_trials,
            sign=self.sign,
        )

    @property
    def resumes(self) -> bool:
        return self.resume

    @property
    def reads_budget(self) -> bool:
        return self.resume and self.endgame_slack is not None

    @property
    def prediction_service(self) -> PredictionService:
        return self.service

    @property
    def first_rung_correlation(self) -> float | None:
        """The Spearman correlation the first-rung test measured, once it has ended (else None)."""
        return None if self._test is None else self._test.correlation

    def first_rung_on(self, trials: Sequence[TrialView]) -> bool | None:
        """Whether the first rung decides: True or False once the test has ended (always
        True without a test), None while a tester has yet to reach the second rung."""
        return True if self._test is None else self._test.is_on(trials)

    def decision_epochs(self) -> Sequence[int]:
        return self.rungs

    # -- decide ------------------------------------------------------------------------------
    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        t = trial.epochs
        if t not in self.rungs:
            return Verdict(Decision.CONTINUE, t, f"epoch {t} is not a rung")
        if trial.finishing:
            return Verdict(Decision.CONTINUE, t, "resumed to finish within the budget: trains to its end unjudged")
        if not finite_prefix(trial, t):
            return Verdict(Decision.STOP, t, f"the curve is not finite within its first {t} epochs")
        done = len(completed_trials(trials, self.max_epochs)) if self.min_completed else 0
        if done < self.min_completed:
            # held running by the start-up rule: the adapter keeps the epoch in the trial's view
            # (TrialView.unranked), and the trial takes no place at this rung
            why = f"{done} of the {self.min_completed} trials that must complete before any stop have completed"
            return Verdict(Decision.CONTINUE, t, why, ranked=False)
        group = self._group_of(trial, trials, t)
        if group is None:
            return self._passes_unjudged(t, trials)
        # with resumption on, the predicted rule waits for promote(): a paused trial costs nothing
        # until a place at the rung falls free, and by then more trials show where the rung stands
        if self._waits(group):
            m = len(group.peers)
            return Verdict(
                Decision.PAUSE,
                t,
                f"{m} of the {self.quorum} trials that rung {t} waits for have reached it; paused until the "
                "rung ranks them",
            )
        standing = self._ranking.standing(group, trials, predict=[] if self.resume else [0])
        judgement = standing.judge(0, predicted_rule=self._ranking.predicts_at(t))
        made = dict(predicted=judgement.predicted, std=judgement.std, threshold=judgement.threshold)
        lenient = f"; {group.note}" if group.note else ""
        if judgement.keep:
            return Verdict(Decision.CONTINUE, t, judgement.reason + lenient, **made)
        if not self.resume:
            return Verdict(Decision.STOP, t, judgement.reason + lenient, **made)
        return Verdict(
            Decision.PAUSE,
            t,
            f"{standing.describe(0)} ranks outside the best {standing.keep} of "
            f"{standing.m} at rung {t} (cut-off {self.sign * standing.cut:.4g}){lenient}; paused until a place "
            "there falls free",
            threshold=self.sign * standing.cut,
        )

    def rung_agreement(self, t: int, trials: Sequence[TrialView]) -> tuple[float, int] | None:
        """The Spearman correlation between the anchors at rung ``t`` and at the next rung of
        the trials that reached the next one, and how many they are; None where it is not
        measured (``agreement`` off, ``t`` above ``agreement_span`` of training or the last
        rung, or fewer than ``agreement_pairs`` such trials)."""
        t2 = self._next_rung(t)
        if self.agreement is None or t > self.agreement_span * self.max_epochs or t2 is None:
            return None
        both = peers_at(t2, trials)
        if len(both) < self.agreement_pairs:
            return None
        here, there = (self.sign * anchors_at(r, both, self.anchor_window) for r in (t, t2))
        # Spearman on ordinal ranks: ties in the order of the trials (deterministic for a seed)
        rho = float(np.corrcoef(rankdata(here, method="ordinal"), rankdata(there, method="ordinal"))[0, 1])
        return rho, len(both)

    def _next_rung(self, t: int) -> int | None:
        """The rung after rung ``t``; None for the last rung or an epoch that is no rung."""
        k = self.rungs.index(t) if t in self.rungs else len(self.rungs)
        return self.rungs[k + 1] if k + 1 < len(self.rungs) else None

    def _group_at(self, t: int, peers: Sequence[TrialView], trials: Sequence[TrialView]) -> RungGroup:
        """The rung's group of all ``peers``: its share is ``eta``, or ``agreement_share``
        where the next rung's ranking disagrees with this one's (:meth:`rung_agreement`)."""
        measured = self.rung_agreement(t, trials)
        if measured is None or measured[0] >= self.agreement:
            return RungGroup(t, tuple(peers), self.reduction_factor)
        rho, n = measured
        note = (
            f"rung {t} keeps 1/{self.agreement_share:g} of its trials, not 1/{self.reduction_factor:g}: its order "
            f"agreed with rung {self._next_rung(t)}'s by Spearman {rho:.2f} over the {n} trials "
            f"that reached both, below {self.agreement:g}"
        )
        return RungGroup(t, tuple(peers), self.agreement_share, note=note)

    def _waits(self, group: RungGroup) -> bool:
        """Whether ``group``'s rung still waits for its quorum (with resumption on only)."""
        return self.resume and len(group.peers) < self.quorum and group.epoch <= self.quorum_span * self.max_epochs

    def _group_of(self, trial: TrialView, trials: Sequence[TrialView], t: int) -> RungGroup | None:
        """The trials ``trial`` is judged among at rung ``t``; None when it passes unjudged."""
        peers = [trial] + [o for o in peers_at(t, trials) if o.key != trial.key]
        if self._test is None or t not in self.rungs[:2] or not self._test.passed_unjudged(trial, trials):
            return self._group_at(t, peers, trials)
        if t == self.rungs[0]:
            return None
        index = {o.key: i for i, o in enumerate(trials)}
        unjudged = [o for o in peers[1:] if self._test.passed_unjudged(o, trials, index.get(o.key, len(trials)))]
        return RungGroup(t, (trial, *unjudged), self.reduction_factor**2, "unjudged")

    def _passes_unjudged(self, t: int, trials: Sequence[TrialView]) -> Verdict:
        on = self.first_rung_on(trials)
        why = "tests the first rung"
        if on is False:
            why = f"the first rung is off (Spearman {self.first_rung_correlation:.2f} with the second rung over the tests)"
        return Verdict(Decision.CONTINUE, t, f"passes rung {t} unjudged: it {why}")

    # -- promote -----------------------------------------------------------------------------
    def promote(
        self, trials: Sequence[TrialView], *, limit: int = 1, more_trials: bool = False, budget_left: int | None = None
    ) -> list[Resumption]:
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
        best value first, then in the order of ``trials`` (deterministic for a seed). While
        ``more_trials`` (the adapter starts a new configuration when none resumes), a rung
        that fewer than ``quorum`` trials have reached resumes no one: its trials wait for
        their peers; once no new configuration follows, it ranks those it has.

        Under a budget (``budget_left``, epochs) the end of the budget comes first: see
        ``endgame_slack`` above; its one resumption finishes its trial.
        """
        limit = check_int("limit", limit, least=0)
        if not self.resume or limit == 0:
            return []
        finishing = self._finishing(trials, budget_left)
        if finishing is not None:
            return [finishing]
        paused = paused_by_rung(trials, self.max_epochs)
        found: list[tuple[int, float, int, Resumption]] = []
        for t in sorted(paused, reverse=True):
            for group, members in self._groups_at(t, paused[t], trials):
                if members and not (more_trials and self._waits(group)):
                    found.extend(self._resumable(group, members, trials))
            if len(found) >= limit:
                break
        found.sort(key=lambda item: item[:3])
        return [item[3] for item in found[:limit]]

    def _finishing(self, trials: Sequence[TrialView], budget_left: int | None) -> Resumption | None:
        """The paused trial resumed to finish at the end of a budget of which ``budget_left``
        epochs are left, or None (no budget, no end yet, or nothing paused can finish)."""
        if self.endgame_slack is None or budget_left is None:
            return None
        left, reserve, E = int(budget_left), self.endgame_slack * self.max_epochs, self.max_epochs
        if left > E + reserve:
            return None  # no trial needs that much: the end is not near
        best = self.best_standing(trials, lambda o: E - o.epochs <= left)
        if best is None:
            return None
        chosen, share, peers = best
        need = E - chosen.epochs
        if left > need + reserve:
            return None
        reason = (
            f"{left} epochs are left of the budget and it needs {need} to finish; its value at epoch "
            f"{chosen.epochs} is at or above {share:.0%} of the {peers} trials that reached that epoch, the best "
            "standing of the paused trials that can finish"
        )
        return Resumption(chosen.key, chosen.epochs, reason, finishing=True)

    def best_standing(
        self, trials: Sequence[TrialView], eligible: Callable[[TrialView], bool] = lambda o: True
    ) -> tuple[TrialView, float, int] | None:
        """The paused trial (among those ``eligible``) whose value at the epoch it paused is at
        or above the largest share of the trials that reached that epoch (ties: the one trained
        longest, then the earliest in ``trials``), with that share and how many trials it is
        of; None when no such trial is paused."""
        paused = [(k, o) for k, o in enumerate(trials) if o.status == TrialStatus.PAUSED and eligible(o)]
        if not paused:
            return None
        standing = {k: self._finish_standing(o, trials) for k, o in paused}
        k, chosen = max(paused, key=lambda item: (standing[item[0]][0], item[1].epochs, -item[0]))
        return chosen, *standing[k]

    def _finish_standing(self, trial: TrialView, trials: Sequence[TrialView]) -> tuple[float, int]:
        """The share of the trials that reached ``trial``'s epoch ``e`` (with a finite value
        there) whose value at ``e`` is at most ``trial``'s, and how many they are."""
        e = trial.epochs
        if e == 0:
            return 0.0, 0
        mine = self.sign * float(trial.curve[e - 1])
        values = [self.sign * float(o.curve[e - 1]) for o in trials if o.epochs >= e]
        values = [v for v in values if math.isfinite(v)]
        if not values or not math.isfinite(mine):
            return 0.0, len(values)
        return sum(v <= mine for v in values) / len(values), len(values)

    def _groups_at(self, t: int, paused: list[int], trials: Sequence[TrialView]) -> list[tuple[RungGroup, list[int]]]:
        """The groups ranked at rung ``t`` with the paused trials (indices) of each."""
        peers = peers_at(t, trials)
        if self._test is None or t != self.rungs[1]:
            return [(self._group_at(t, peers, trials), paused)]
        # the trials that passed the first rung unjudged are ranked among themselves, with two rungs' share
        index = {o.key: i for i, o in enumerate(trials)}
        unjudged = {o.key for o in peers if self._test.passed_unjudged(o, trials, index[o.key])}
        judged = self._group_at(t, peers, trials)
        skipped = RungGroup(t, tuple(o for o in peers if o.key in unjudged), self.reduction_factor**2, "unjudged")
        return [
            (judged, [i for i in paused if trials[i].key not in unjudged]),
            (skipped, [i for i in paused if trials[i].key in unjudged]),
        ]

    def _resumable(self, group: RungGroup, members_at: list[int], trials: Sequence[TrialView]) -> list:
        """``(-t, -value, i, Resumption)`` of the paused trials ``members_at`` (indices in
        ``trials``) that resume into the free places of ``group``."""
        places, t = group.free_places(), group.epoch
        if places <= 0:
            return []
        # skip the ranking when nothing it reads has changed since it resumed no one here: the
        # trials at the rung, the paused ones, the free places, the horizon, the curves that
        # reached it, and the predictor's model (a background fit that landed since is read)
        horizon = self._ranking.horizon(t, trials)
        reached = 0 if horizon is None else sum(1 for o in trials if o.epochs >= horizon)
        paused_keys = frozenset(trials[i].key for i in members_at)
        state = (frozenset(o.key for o in group.peers), paused_keys, places, horizon, reached)
        rescored = self._ranking.rescore is not None and self._ranking.rescore.acts_at(t)
        if self._configuration is not None or rescored:
            h, done = self._model.data(trials)
            state += (h, len(done))
        if self._unchanged.get((t, group.name)) == (state, self.service.version):
            return []
        position = {id(o): k for k, o in enumerate(group.peers)}
        members = [position[id(trials[i])] for i in members_at]
        standing = self._ranking.standing(group, trials, predict=members)
        score = self._configuration.score(standing, trials) if self._configuration is not None else None
        here = []
        for i, k in zip(members_at, members, strict=True):
            judgement = standing.judge(k, predicted_rule=self._ranking.predicts_at(t))
            order = judgement.value
            if score is not None:
                # the configuration rule keeps a trial too, and orders every candidate of the rung by its score
                order = float(score[k])
                judgement = self._configuration.amend(judgement, score, k, standing.keep)
            if judgement.keep:
                reason = f"{judgement.reason}; {places} of the {standing.keep} places at rung {t} are free"
                if group.note:
                    reason += f" ({group.note})"
                made = dict(predicted=judgement.predicted, std=judgement.std, threshold=judgement.threshold)
                here.append((-t, -order, i, Resumption(trials[i].key, t, reason, **made)))
        if not here:
            self._unchanged[(t, group.name)] = (state, self.service.version)
        here.sort(key=lambda item: item[:3])
        return here[:places]


class PredictiveHalvingStop(PredictiveHalving):
    """:class:`PredictiveHalving` with resumption off: the trials it does not keep stop for
    good (``qhpo-stop``; ``agreement`` is off unless it is given, and then its decisions are
    those of ``qhpo`` with ``agreement`` off up to the first resumption)."""

    name = "qhpo-stop"

    def __init__(self, **kwargs: Any):
        if kwargs.pop("resume", False):
            raise ValueError("policy 'qhpo-stop' never resumes a trial; use policy 'qhpo' to resume")
        kwargs.setdefault("agreement", None)  # the rule as chosen for it; a stopped trial cannot come back
        super().__init__(resume=False, **kwargs)
