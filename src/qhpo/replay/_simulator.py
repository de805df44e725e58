"""Replaying recorded learning curves through a stopping rule on W simulated workers.

Trials start in the given order; a free worker takes the next one. A trial with curve
``c_1..c_E`` and seconds-per-epoch ``d`` occupies its worker from its start ``s`` until
``s + e * d`` after ``e`` epochs; after each epoch the agent (a policy or an Optuna
pruner) sees ``c_e`` and answers continue or stop. Events are processed in time order,
ties by worker number, so the outcome is deterministic. With one worker this is the
sequential study in which trial ``i`` starts when trial ``i - 1`` ends.

A diverged trial (a NaN at epoch ``d``) ends at epoch ``d`` whatever the rule: it has
trained ``d`` epochs, which count as its cost, and the agent is told that it failed
(:attr:`qhpo.policies.TrialStatus.FAILED`) without seeing the NaN, as a training loop
that checks its loss would end it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qhpo.policies import TrialStatus


class ReplayAgent(Protocol):
    """What the simulator drives: a stopping rule seen through its adapter."""

    def start(self, index: int) -> None:
        """Trial ``index`` (a row of the replayed curves) starts training."""

    def report(self, index: int, epoch: int, value: float) -> bool:
        """Trial ``index`` finished ``epoch`` (1-based) with ``value``; True to continue."""

    def finish(self, index: int, status: TrialStatus) -> None:
        """Trial ``index`` ends: COMPLETE (trained to the last epoch), STOPPED or FAILED (diverged)."""


@dataclass(frozen=True)
class ReplayOutcome:
    """What one replay produced.

    Attributes:
        epochs_trained: Epochs each trial trained, shape (n,).
        complete: Whether each trial trained to the last epoch, shape (n,).
        wallclock: Time when the last worker fell idle (epochs, or seconds when the
            curves came with seconds per epoch).
    """

    epochs_trained: np.ndarray
    complete: np.ndarray
    wallclock: float

    @property
    def cost(self) -> int:
        return int(self.epochs_trained.sum())


def simulate(
    curves: np.ndarray, agent: ReplayAgent, *, workers: int = 1, seconds_per_epoch: np.ndarray | None = None
) -> ReplayOutcome:
    """Replay ``curves`` (n, E), in row order, through ``agent`` on ``workers`` workers.

    Args:
        curves: One learning curve per row, in the order trials start.
        agent: The stopping rule.
        workers: Number of simulated workers training trials at the same time.
        seconds_per_epoch: Per-row epoch duration; ``None`` counts time in epochs.
    """
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise ValueError(f"curves must be a non-empty 2-d array, got shape {curves.shape}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    n, epochs = curves.shape
    duration = np.ones(n) if seconds_per_epoch is None else np.asarray(seconds_per_epoch, dtype=float)
    trained = np.zeros(n, dtype=int)
    complete = np.zeros(n, dtype=bool)
    events: list[tuple[float, int, int]] = []  # (time the epoch ends, worker, trial)
    next_trial = 0
    clock = 0.0

    def launch(worker: int, now: float) -> None:
        nonlocal next_trial
        if next_trial < n:
            i = next_trial
            next_trial += 1
            agent.start(i)
            heapq.heappush(events, (now + duration[i], worker, i))

    for worker in range(min(int(workers), n)):
        launch(worker, 0.0)
    while events:
        now, worker, i = heapq.heappop(events)
        clock = now
        trained[i] += 1
        e = int(trained[i])
        value = float(curves[i, e - 1])
        if not math.isfinite(value):
            agent.finish(i, TrialStatus.FAILED)
            launch(worker, now)
            continue
        go_on = agent.report(i, e, value)
        if e >= epochs:
            complete[i] = True
            agent.finish(i, TrialStatus.COMPLETE)
            launch(worker, now)
        elif go_on:
            heapq.heappush(events, (now + duration[i], worker, i))
        else:
            agent.finish(i, TrialStatus.STOPPED)
            launch(worker, now)
    return ReplayOutcome(trained, complete, clock)
