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
    """Views of every trial of one study, each rebuilt only when the trial changed.

    Safe to share between threads; one cache serves one study.
    """

    def __init__(self) -> None:
        self._views: dict[int, tuple[tuple, TrialView | None]] = {}
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
                signature = _signature(trial)
                cached = self._views.get(trial.number)
                if cached is None or cached[0] != signature:
                    cached = (signature, trial_view(trial))
                    self._views[trial.number] = cached
                if cached[1] is not None:
                    out.append(cached[1])
        if current is not None:
            view = trial_view(current)
            if view is not None:
                out.append(view)
        return out
