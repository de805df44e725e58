"""Optuna trials seen as :class:`qhpo.policies.TrialView` records.

A trial's curve is its intermediate values in the order of their steps (a step is an epoch).
Optuna states map to policy states as COMPLETE -> complete, PRUNED -> stopped,
RUNNING -> running, FAIL -> failed; WAITING trials have no curve yet and are left out.
Finished trials never change, so their views are built once and cached; only the few
running trials are rebuilt on every call, which keeps a call in milliseconds with
hundreds of trials in the study.
"""

from __future__ import annotations

import threading
from typing import Sequence

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


class TrialViewCache:
    """Views of every trial of one study, with finished trials built only once.

    Safe to share between threads; one cache serves one study.
    """

    def __init__(self) -> None:
        self._finished: dict[int, TrialView] = {}
        self._lock = threading.Lock()

    def views(self, study: optuna.Study, current: FrozenTrial | None = None) -> list[TrialView]:
        """Views of all started trials; ``current`` (the trial asking) replaces its stored copy.

        The trial passed to a pruner holds values reported a moment ago that another
        process may not see yet, so it is the authoritative copy of itself.
        """
        trials: Sequence[FrozenTrial] = study.get_trials(deepcopy=False)
        out: list[TrialView] = []
        with self._lock:
            for trial in trials:
                if current is not None and trial.number == current.number:
                    continue
                view = self._finished.get(trial.number)
                if view is None:
                    view = trial_view(trial)
                    if view is None:
                        continue
                    if trial.state.is_finished():
                        self._finished[trial.number] = view
                out.append(view)
        if current is not None:
            view = trial_view(current)
            if view is not None:
                out.append(view)
        return out
