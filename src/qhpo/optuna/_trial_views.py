"""Optuna trials seen as :class:`qhpo.policies.TrialView` records.

A trial's curve is its intermediate values in the order of their steps (a step is an epoch).
Optuna states map to policy states as COMPLETE -> complete, PRUNED -> stopped,
RUNNING -> running, FAIL -> failed; WAITING trials have no curve yet and are left out.
Views are cached per trial by (state, number of reported steps, last step): a finished
trial's view is built once, a running trial's again only after it reported a new epoch, so
the cost of a call grows with the trials that changed, not with the study's history.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from qhpo.policies import TrialStatus, TrialView

_STATUS = {
    TrialState.COMPLETE: TrialStatus.COMPLETE,
    TrialState.PRUNED: TrialStatus.STOPPED,
    TrialState.RUNNING: TrialStatus.RUNNING,
    TrialState.FAIL: TrialStatus.FAILED,
}


def trial_curve(trial: FrozenTrial) -> list[float]:
    """Intermediate values of ``trial`` ordered by step."""
    values = trial.intermediate_values
    return [float(values[step]) for step in sorted(values)]


def trial_view(trial: FrozenTrial) -> TrialView | None:
    """The policy's view of ``trial``; None for a trial that is still waiting to start."""
    status = _STATUS.get(trial.state)
    if status is None:
        return None
    return TrialView(key=trial.number, curve=tuple(trial_curve(trial)), params=dict(trial.params), status=status)


def _signature(trial: FrozenTrial) -> tuple:
    values = trial.intermediate_values
    return (trial.state, len(values), max(values) if values else None)


class TrialViewCache:
    """Views of every trial of one study, each built once per change of the trial.

    Trials come sorted by number; the finished ones at the front never change again, so
    their views are kept in one list that later calls extend and copy, and only the trials
    after the first unfinished one are looked at again (a view rebuilt only when its
    signature changed). Safe to share between threads; one cache serves one study.
    """

    def __init__(self) -> None:
        self._stable: list[TrialView] = []  # views of trials 0..self._settled-1, all finished
        self._settled = 0
        self._views: dict[int, tuple[tuple, TrialView | None]] = {}
        self._lock = threading.Lock()

    def views(self, study: optuna.Study, current: FrozenTrial | None = None) -> list[TrialView]:
        """Views of all started trials; ``current`` (the trial asking) replaces its stored copy.

        The trial passed to a pruner holds values reported a moment ago that another
        process may not see yet, so it is the authoritative copy of itself.
        """
        trials: Sequence[FrozenTrial] = study.get_trials(deepcopy=False)
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
        if current is not None:
            view = trial_view(current)
            if view is not None:
                out.append(view)
        return out

    def _view(self, trial: FrozenTrial) -> TrialView | None:
        signature = _signature(trial)
        cached = self._views.get(trial.number)
        if cached is None or cached[0] != signature:
            cached = (signature, trial_view(trial))
            self._views[trial.number] = cached
        return cached[1]
