"""Optuna trials seen as :class:`qhpo.policies.TrialView` records.

A trial's curve is indexed by step: Optuna's ``trial.report(value, step)`` says the value
after ``step`` epochs, so ``curve[e - 1]`` is the value reported at the largest step ``<= e``
(steps left out between two reports carry the earlier value forward; epochs before the
first reported step take its value), and the curve is as long as the largest step. A
trial that reports every epoch from 1 has its reports as its curve.
Optuna states map to policy states as COMPLETE -> complete, PRUNED -> stopped,
RUNNING -> running, FAIL -> failed (its curve ends before its first non-finite value, as in
every adapter: :meth:`qhpo.policies.TrialView.of`); WAITING trials have no curve yet and are
left out.

Freeze-thaw: a PRUNED trial that carries the user attribute ``qhpo.paused`` (the policy
answered PAUSE) is *paused*. A later trial with ``qhpo.resume_of = N`` continues paused
trial ``N`` from its checkpoint and reports the same first epochs again, so while it waits,
runs or has finished, trial ``N`` is left out of the views (and out of the configurations
counted): the configuration is seen once, through the trial that continues it. When every
trial that continued ``N`` failed (a diverged resumption), ``N`` is left out too: the
configuration is seen through its failed continuation, as the replay sees a trial that
diverged after a resumption (failed: no rung's peer, its curve unused), and is not resumed
again.

Views list the configurations in the order they started: a trial that continues paused trial
``N`` stands where ``N`` stood (:func:`configuration_slots`), as in the replay, so that a
policy's ties break the same way in every process and after any number of resumptions.

Views are cached per trial by (state, number of reported steps, last step): a finished
trial's view is built once, a running trial's again only after it reported a new epoch, so
the cost of a call grows with the trials that changed, not with the study's history.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from qhpo._optuna_schema import (
    PAUSED_ATTR,
    RESUME_ATTR,
    RESUME_OF_ATTR,
    UNRANKED_ATTR,
)
from qhpo.policies import TrialStatus, TrialView

_STATUS = {
    TrialState.COMPLETE: TrialStatus.COMPLETE,
    TrialState.PRUNED: TrialStatus.STOPPED,
    TrialState.RUNNING: TrialStatus.RUNNING,
    TrialState.FAIL: TrialStatus.FAILED,
}
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trial_curve(trial: FrozenTrial) -> list[float]:
    """The curve of ``trial`` by epoch: ``curve[e - 1]`` is the value reported at the largest
    step ``<= e`` (the first reported value before it), ``len(curve)`` the largest step.

    Example:
        >>> import optuna
        >>> trial = optuna.trial.create_trial(value=0.6, intermediate_values={2: 0.3, 5: 0.5, 6: 0.6})
        >>> trial_curve(trial)
        [0.3, 0.3, 0.3, 0.3, 0.5, 0.6]
    """
    return curve_by_step(trial.intermediate_values)


def curve_by_step(values: dict[int, float]) -> list[float]:
    """:func:`trial_curve` of intermediate values ``{step: value}``."""
    if not values:
        return []
    steps = sorted(values)
    curve: list[float] = []
    current = float(values[steps[0]])
    k = 0
    for epoch in range(1, max(steps[-1], 1) + 1):
        while k < len(steps) and steps[k] <= epoch:
            current = float(values[steps[k]])
            k += 1
        curve.append(current)
    return curve


def is_paused(trial: FrozenTrial) -> bool:
    """Whether ``trial`` ended PRUNED on a PAUSE (whether or not it was resumed since)."""
    return trial.state == TrialState.PRUNED and trial.user_attrs.get(PAUSED_ATTR) is not None


def resumed_after(trial: FrozenTrial) -> int | None:
    """The epoch after which ``trial`` resumes the paused trial it continues (the epoch of
    its ``qhpo.resume`` record); None for a trial that resumes none."""
    epoch = (trial.user_attrs.get(RESUME_ATTR) or {}).get("epoch")
    return None if epoch is None else int(epoch)


def trial_view(trial: FrozenTrial) -> TrialView | None:
    """The policy's view of ``trial`` alone; None for a trial that is still waiting to start.

    A paused trial's view is PAUSED here; :func:`continuations` says whether it was resumed since.
    """
    status = _STATUS.get(trial.state)
    if status is None:
        return None
    if status == TrialStatus.STOPPED and is_paused(trial):
        status = TrialStatus.PAUSED
    unranked = (int(e) for e in trial.user_attrs.get(UNRANKED_ATTR) or ())
    finishing = bool((trial.user_attrs.get(RESUME_ATTR) or {}).get("finishing"))  # resumed to finish
    return TrialView.of(trial.number, tuple(trial_curve(trial)), dict(trial.params), status, unranked, finishing)


def continuations(trials: Iterable[FrozenTrial]) -> tuple[set[int], set[int]]:
    """``(resumed, failed)``: paused trials continued by a trial that waits, runs or finished,
    and paused trials whose every continuation failed."""
    resumed: set[int] = set()
    failed: set[int] = set()
    for trial in trials:
        of = trial.user_attrs.get(RESUME_OF_ATTR)
        if of is not None:
            (failed if trial.state == TrialState.FAIL else resumed).add(int(of))
    return resumed, failed - resumed


def configuration_slots(trials: Iterable[FrozenTrial]) -> dict[int, int]:
    """Trial number -> the number of the trial that started its configuration: a trial that
    continues paused trial ``N`` (``qhpo.resume_of``) takes ``N``'s place, so that views list
    configurations in the order they started, as the replay does, however often they resumed."""
    slot: dict[int, int] = {}
    for trial in trials:
        of = trial.user_attrs.get(RESUME_OF_ATTR)
        slot[trial.number] = trial.number if of is None else slot.get(int(of), int(of))
    return slot


def configuration_counts(trials: Sequence[FrozenTrial]) -> tuple[int, int]:
    """(finished, running) configurations: COMPLETE or PRUNED trials that no trial continues,
    and RUNNING trials. A paused and resumed configuration counts once."""
    resumed, _ = continuations(trials)
    finished = sum(t.state in _FINISHED and t.number not in resumed for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return finished, running


def _signature(trial: FrozenTrial) -> tuple:
    values = trial.intermediate_values
    unranked = len(trial.user_attrs.get(UNRANKED_ATTR) or ())
    return (trial.state, len(values), max(values) if values else None, unranked)


class TrialViewCache:
    """Views of every trial of one study, each built once per change of the trial.

    Trials come sorted by number; the finished ones at the front never change again, so
    their views are kept in one list that later calls extend and copy, and only the trials
    after the first unfinished one are looked at again (a view rebuilt only when its
    signature changed). Paused trials that a trial continues (or continued and failed) are
    then left out. Safe to share between threads; one cache serves one study.
    """

    def __init__(self) -> None:
        self._stable: list[TrialView] = []  # views of trials 0..self._settled-1, all finished
        self._settled = 0
        self._views: dict[int, tuple[tuple, TrialView | None]] = {}
        self._lock = threading.Lock()

    def views(
        self,
        study: optuna.Study,
        current: FrozenTrial | None = None,
        trials: Sequence[FrozenTrial] | None = None,
    ) -> list[TrialView]:
        """Views of all started trials; ``current`` (the trial asking) replaces its stored copy.

        The trial passed to a pruner holds values reported a moment ago that another
        process may not see yet, so it is the authoritative copy of itself. ``trials``:
        the study's trials when the caller has just read them.
        """
        if trials is None:
            trials = study.get_trials(deepcopy=False)
        resumed, failed = continuations(trials)
        with self._lock:
            while self._settled < len(trials) and trials[self._settled].state.is_finished():
                view = self._view(trials[self._settled])
                if view is not None:
                    self._stable.append(view)
                self._views.pop(trials[self._settled].number, None)
                self._settled += 1
            out = list(self._stable)
            for trial in trials[self._settled :]:
                if current is not None and trial.number == current.number:
                    continue
                view = self._view(trial)
                if view is not None:
                    out.append(view)
            if resumed or failed:
                # a paused trial that a trial continues, or continued and failed, is seen through it
                continued = resumed | failed
                out = [v for v in out if not (v.status == TrialStatus.PAUSED and v.key in continued)]
        if current is not None:
            view = trial_view(current)
            if view is not None:
                out.append(view)
        if resumed or failed:
            slot = configuration_slots(trials)
            out.sort(key=lambda v: (slot.get(v.key, v.key), v.key))
        return out

    def _view(self, trial: FrozenTrial) -> TrialView | None:
        signature = _signature(trial)
        cached = self._views.get(trial.number)
        if cached is None or cached[0] != signature:
            cached = (signature, trial_view(trial))
            self._views[trial.number] = cached
        return cached[1]
