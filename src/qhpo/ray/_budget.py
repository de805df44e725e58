"""A Ray Tune search bounded by a budget of epochs or of time (``qhpo run --backend ray --budget``).

The driver's :class:`qhpo.ray.PredictiveScheduler` sees every epoch that every trial
reports, so it keeps the account itself (in its state, which Ray Tune's experiment
checkpoints carry through a killed and resumed driver):

* **Epochs spent**: one per epoch a trial reported. A trial that a restored experiment
  sends back to its last checkpoint trains the epochs it repeats again, and they count
  again (they were trained twice).
* **Seconds spent**: each driver run keeps one ``[start, last]`` interval, from its first
  reported epoch to its latest; the time spent is the length of their union, so the time
  between a killed driver and its resume counts nothing.

As on the Optuna backend (:mod:`qhpo.runner._budget`), with ``left = budget - spent`` a new
configuration starts only while ``left`` holds the policy's first rung once the running
trials have reached theirs; a paused trial resumes only while ``left > 0``; and a trial
still training when ``left`` reaches 0 is stopped after its epoch (recorded PRUNED with
``qhpo.budget_cut``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from qhpo.runner import Budget, epochs_of, fits_new_configuration, union_length


class SearchBudget:
    """What a Ray search has spent of ``budget``, and whether a new configuration fits.

    Example:
        >>> budget = SearchBudget(Budget.parse("5"), first_rung=2)
        >>> for _ in range(3):
        ...     budget.epoch_reported(1.0)
        >>> budget.left(), budget.room_for_new(running_epochs=[]), budget.room_for_new(running_epochs=[1])
        (2.0, True, False)

    Args:
        budget: The budget, in epochs or seconds.
        first_rung: The first epoch at which the search's policy may stop a trial.
    """

    def __init__(self, budget: Budget, first_rung: int):
        self.budget = budget
        self.first_rung = max(1, int(first_rung))
        self.epochs = 0
        self.epoch_seconds = 0.0  # summed over the epochs that said how long they took
        self.timed_epochs = 0
        self.clock: list[list[float]] = []  # one [start, last] per driver run
        self._interval: list[float] | None = None  # this driver run's, once it has seen an epoch

    def epoch_reported(self, seconds: float | None = None) -> None:
        """Count one reported epoch (``seconds``: how long it trained, when known)."""
        self.epochs += 1
        if seconds is not None and seconds == seconds and seconds >= 0:
            self.epoch_seconds += float(seconds)
            self.timed_epochs += 1
        now = time.time()
        if self._interval is None:
            self._interval = [now, now]
            self.clock.append(self._interval)
        self._interval[1] = now

    def spent(self) -> float:
        """Epochs or seconds spent so far, over every driver run of the search."""
        return float(self.epochs) if self.budget.unit == "epochs" else union_length(self.clock)

    def left(self) -> float:
        """What is left of the budget (0 or less: spent)."""
        return self.budget.amount - self.spent()

    def epochs_left(self) -> int | None:
        """What is left in epochs, as the policy reads it (:func:`qhpo.runner.epochs_of`)."""
        return epochs_of(self.budget, self.left(), self._mean_epoch)

    def room_for_new(self, running_epochs: Iterable[int]) -> bool:
        """Whether what is left holds a new configuration's first rung once the running trials
        (``running_epochs``: the epochs each has trained) have reached theirs."""
        return fits_new_configuration(self.budget, self.left(), self.first_rung, running_epochs, self._mean_epoch)

    def _mean_epoch(self) -> float:
        return self.epoch_seconds / self.timed_epochs if self.timed_epochs else 0.0

    def get_state(self) -> dict[str, Any]:
        """The account as plain JSON-ready data."""
        return {
            "epochs": self.epochs,
            "epoch_seconds": self.epoch_seconds,
            "timed_epochs": self.timed_epochs,
            "clock": [list(i) for i in self.clock],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned; this driver run starts a new interval."""
        self.epochs = int(state["epochs"])
        self.epoch_seconds = float(state["epoch_seconds"])
        self.timed_epochs = int(state["timed_epochs"])
        self.clock = [[float(a), float(b)] for a, b in state["clock"]]
        self._interval = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_interval"] = None  # a driver run's interval is not carried into the next run
        state["clock"] = [list(i) for i in self.clock]
        return state
