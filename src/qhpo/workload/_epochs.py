"""The epoch loop of a trial, whatever runs it: train an epoch, hand it to the caller, repeat.

Every backend trains its trials through :func:`train_epochs` and differs only in what it
does after an epoch (the Optuna backend saves a checkpoint, reports the value and asks its
pruner; the Ray backend reports to Ray Tune, with a checkpoint at decision epochs) and in
how it records a training that diverged, which the loop catches in one place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from qhpo.workload._trainer import TrialDiverged, TrialTrainer

#: ``after_epoch(value, epoch, seconds) -> stop``: called after each trained epoch with its
#: validation accuracy, the epochs trained so far and the epoch's training seconds.
AfterEpoch = Callable[[float, int, float], bool]


@dataclass(frozen=True)
class TrainingEnd:
    """How :func:`train_epochs` ended."""

    #: Validation accuracy after the last trained epoch (NaN when none was trained).
    value: float
    #: ``after_epoch`` asked to stop.
    stopped: bool = False
    #: Why the training diverged (:attr:`TrialDiverged.reason`); None when it did not.
    diverged: str | None = None


def train_epochs(trainer: TrialTrainer, max_epochs: int, after_epoch: AfterEpoch) -> TrainingEnd:
    """Train ``trainer`` until it has trained ``max_epochs`` epochs or ``after_epoch`` returns True.

    A trainer restored from a checkpoint goes on from its epoch; one already at
    ``max_epochs`` trains nothing and ends on the last value of its curve. A training that
    diverges (:class:`TrialDiverged`) ends the loop with its reason, and ``after_epoch`` is
    not called for the epoch that diverged.

    Example:
        >>> class Counting:  # TrialTrainer's loop interface: epoch, curve, train_epoch()
        ...     def __init__(self):
        ...         self.epoch, self.curve = 0, []
        ...     def train_epoch(self):
        ...         self.epoch += 1
        ...         self.curve.append(self.epoch / 10)
        ...         return self.curve[-1]
        >>> train_epochs(Counting(), 5, lambda value, epoch, seconds: epoch == 3)
        TrainingEnd(value=0.3, stopped=True, diverged=None)
    """
    value = trainer.curve[-1] if trainer.curve else math.nan
    while trainer.epoch < max_epochs:
        start = time.perf_counter()
        try:
            value = trainer.train_epoch()
        except TrialDiverged as error:
            return TrainingEnd(value, diverged=error.reason)
        if after_epoch(value, trainer.epoch, time.perf_counter() - start):
            return TrainingEnd(value, stopped=True)
    return TrainingEnd(value)
