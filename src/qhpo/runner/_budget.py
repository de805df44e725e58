"""A search bounded by a budget of epochs or of time, shared by every process of one study.

``qhpo run --budget 400`` gives the search 400 epochs; ``--budget 24h`` (or ``90m``,
``3600s``, ``2d``) gives it a duration. What was spent is read from the study, so the worker
processes, the nodes on one database and a re-run after a kill share one budget:

* **Epochs spent**: the sum over the study's trials of the epochs each trained itself,
  ``len(intermediate_values) - resumed_at`` (``qhpo.resumed_at_epoch``: the epochs a
  resumption or retry re-reported from its checkpoint, trained by an earlier trial).
* **Seconds spent**: each worker process keeps one study user attribute
  ``qhpo.budget.clock:HOST:PID:START`` holding ``[START, LAST]``, the UNIX times of its
  first claim and of its latest claim or epoch; the time spent is the length of the union
  of these intervals, so that workers training at once count once, a re-run adds its own
  interval, and the time between a killed run and its re-run counts nothing.

With ``left = budget - spent``, a new configuration starts only while ``left`` holds the
policy's first rung (:func:`qhpo.optuna.first_rung`) once the running trials have reached
theirs (in seconds: those epochs times the mean seconds per epoch of the study's trials, 0
before any trial has finished one), as the replay's budget mode decides; a paused
trial resumes, and an interrupted one is retried, while ``left > 0`` (the policy is told
``left`` in epochs, a duration at the mean seconds per epoch so far: :func:`epochs_of`, so
that ``qhpo`` can finish its best paused trial at the end); and a trial still
training when ``left`` reaches 0 is cut after its epoch (told PRUNED, with the user
attribute ``qhpo.budget_cut`` holding that epoch). With ``--trials`` too, the search ends at
whichever limit comes first.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import optuna

from qhpo._errors import QhpoError
from qhpo._optuna_schema import (
    BUDGET_CLOCK_PREFIX,
    BUDGET_CUT_ATTR,
    EPOCH_SECONDS_ATTR,
    RAY_BUDGET_EPOCHS_ATTR,
    RESUMED_AT_ATTR,
    storage_of,
    study_id,
)

#: Study user attribute prefix of a worker process's clock interval (seconds budgets).
CLOCK_ATTR_PREFIX = BUDGET_CLOCK_PREFIX

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


@dataclass(frozen=True)
class Budget:
    """A budget: ``amount`` epochs (``unit="epochs"``) or seconds (``unit="seconds"``).

    Example:
        >>> Budget.parse("400"), Budget.parse("1.5h").amount
        (Budget(amount=400, unit='epochs'), 5400.0)
    """

    amount: float
    unit: str

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``EPOCHS`` (a whole number) or a duration ``NUMBER`` + ``s``, ``m``, ``h`` or ``d``."""
        clean = str(text).strip().lower()
        if clean.isdigit() and int(clean) > 0:
            return cls(int(clean), "epochs")
        match = _DURATION.fullmatch(clean)
        if match and float(match.group(1)) > 0:
            return cls(float(match.group(1)) * _UNITS[match.group(2)], "seconds")
        raise QhpoError(
            f"--budget must be a positive whole number of epochs (400) or a duration such as 24h, 90m or 3600s, "
            f"not {text!r}."
        )

    def describe(self, amount: float | None = None) -> str:
        """``amount`` (default: the budget) in the budget's unit, for a person."""
        amount = self.amount if amount is None else amount
        if self.unit == "epochs":
            return f"{int(round(amount))} epochs"
        if amount >= 3600:
            return f"{amount / 3600:.2f} h"
        return f"{amount / 60:.1f} min" if amount >= 60 else f"{amount:.0f} s"


def epochs_spent(trials: Sequence[optuna.trial.FrozenTrial]) -> int:
    """Epochs the trials trained, each epoch once (a resumption's re-reported epochs excluded)."""
    total = 0
    for trial in trials:
        resumed_at = int(trial.user_attrs.get(RESUMED_AT_ATTR, 0) or 0)
        total += max(0, len(trial.intermediate_values) - resumed_at)
    return total


def union_length(intervals: Sequence[Sequence[float]]) -> float:
    """Total length of the union of ``[start, end]`` intervals.

    Example:
        >>> union_length([[0, 10], [5, 12], [20, 21]])
        13.0
    """
    total, reach = 0.0, -math.inf
    for start, end in sorted((float(a), float(b)) for a, b in intervals if float(b) > float(a)):
        if start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def seconds_spent(study: optuna.Study) -> float:
    """Seconds during which some worker process of the study claimed or trained trials."""
    attrs = storage_of(study).get_study_user_attrs(study_id(study))
    return union_length([v for k, v in attrs.items() if k.startswith(CLOCK_ATTR_PREFIX)])


def mean_epoch_seconds(trials: Sequence[optuna.trial.FrozenTrial]) -> float:
    """Mean of the trials' seconds per epoch, weighted by their epochs; 0 before any is known."""
    total = count = 0.0
    for trial in trials:
        seconds = trial.user_attrs.get(EPOCH_SECONDS_ATTR)
        if seconds is None:
            continue
        epochs = max(1, len(trial.intermediate_values) - int(trial.user_attrs.get(RESUMED_AT_ATTR, 0) or 0))
        total += float(seconds) * epochs
        count += epochs
    return total / count if count else 0.0


def fits_new_configuration(
    budget: Budget, left: float, first_rung: int, running_epochs: Iterable[int], seconds_per_epoch: Callable[[], float]
) -> bool:
    """Whether ``left`` of ``budget`` holds a new configuration's first rung once the running
    trials (``running_epochs``: the epochs each has trained) have reached theirs:
    ``left - sum_running max(0, first_rung - epochs) >= first_rung``; in a time budget those
    epochs are priced at ``seconds_per_epoch()`` (asked only then), and something must be left.

    Example:
        >>> fits_new_configuration(Budget(10, "epochs"), 4, 3, [1], lambda: 0.0)
        False
    """
    reserved = sum(max(0, first_rung - int(e)) for e in running_epochs)
    if budget.unit == "epochs":
        return left - reserved >= first_rung
    return left > 0 and left >= (reserved + first_rung) * seconds_per_epoch()


def epochs_of(budget: Budget, left: float, seconds_per_epoch: Callable[[], float]) -> int | None:
    """What is ``left`` of ``budget`` in epochs, as the policy reads it (``budget_left`` of
    :meth:`qhpo.policies.StoppingPolicy.promote`): the epochs themselves, or the seconds at
    ``seconds_per_epoch()`` (the mean so far; None before any epoch has been timed).

    Example:
        >>> epochs_of(Budget(100, "epochs"), 12.0, lambda: 0.0), epochs_of(Budget(3600, "seconds"), 95.0, lambda: 10.0)
        (12, 9)
    """
    if budget.unit == "epochs":
        return max(0, int(math.floor(left)))
    seconds = seconds_per_epoch()
    return max(0, int(math.floor(left / seconds))) if seconds > 0 else None


class BudgetTracker:
    """One worker process's view of the study's budget: what is left, and whether a new
    configuration, a resumption or the running trial's next epoch fits in it.

    Args:
        budget: The budget.
        first_rung: The first epoch at which the study's policy may stop a trial.
    """

    def __init__(self, budget: Budget, first_rung: int):
        self.budget = budget
        self.first_rung = int(first_rung)
        self._started = time.time()
        self._key = f"{CLOCK_ATTR_PREFIX}{socket.gethostname()}:{os.getpid()}:{self._started:.3f}"

    def touch(self, study: optuna.Study) -> None:
        """Extend this process's clock interval to now (seconds budgets only)."""
        if self.budget.unit == "seconds":
            storage_of(study).set_study_user_attr(study_id(study), self._key, [self._started, time.time()])

    def spent(self, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> float:
        """Epochs or seconds spent by every process of the study so far."""
        if self.budget.unit == "seconds":
            return seconds_spent(study)
        return float(epochs_spent(study.get_trials(deepcopy=False) if trials is None else trials))

    def left(self, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> float:
        """What is left of the budget (0 or less: spent)."""
        return self.budget.amount - self.spent(study, trials)

    def room_for_new(self, left: float, trials: Sequence[optuna.trial.FrozenTrial]) -> bool:
        """Whether ``left`` holds a new configuration's first rung once the running trials
        have reached theirs (:func:`fits_new_configuration`)."""
        running = [len(t.intermediate_values) for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        return fits_new_configuration(self.budget, left, self.first_rung, running, lambda: mean_epoch_seconds(trials))

    def epochs_left(self, left: float, trials: Sequence[optuna.trial.FrozenTrial]) -> int | None:
        """``left`` in epochs, as the policy reads it (:func:`epochs_of`)."""
        return epochs_of(self.budget, left, lambda: mean_epoch_seconds(trials))

    def exhausted(self, study: optuna.Study) -> bool:
        """Whether the budget is spent (the running trial is cut); extends this process's clock first."""
        self.touch(study)
        return self.left(study) <= 0


def budget_summary(study: optuna.Study, budget: Budget) -> str:
    """One line: what the search spent of its budget.

    An epochs budget on Ray is spent by the driver's account, which counts an epoch trained
    again from a checkpoint after a killed driver's resume a second time (the study holds
    it once): the line then gives the account and says how many epochs the study holds.
    """
    trials = study.get_trials(deepcopy=False)
    recorded = epochs_spent(trials)
    spent = seconds_spent(study) if budget.unit == "seconds" else float(recorded)
    repeated = ""
    account = study.user_attrs.get(RAY_BUDGET_EPOCHS_ATTR)
    if budget.unit == "epochs" and isinstance(account, int) and account > recorded:
        spent = float(account)
        repeated = f" ({recorded} in the study; {account - recorded} trained again from a checkpoint after a resume)"
    cut = sum(BUDGET_CUT_ATTR in t.user_attrs for t in trials)
    return (
        f"budget: {budget.describe(spent)} of {budget.describe()} spent"
        + (f" ({recorded} epochs)" if budget.unit == "seconds" else repeated)
        + (f"; {cut} trial(s) cut when it ran out" if cut else "")
    )
