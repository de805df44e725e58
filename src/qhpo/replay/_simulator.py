"""Replaying recorded learning curves through a stopping rule on W simulated workers.

Trials start in the given order; a free worker resumes a paused trial when the agent
names one (freeze-thaw), and otherwise takes the next new one. A trial with curve
``c_1..c_E`` and seconds-per-epoch ``d`` occupies its worker from its start ``s`` until
``s + e * d`` after ``e`` epochs; after each epoch the agent (a policy or an Optuna
pruner) sees ``c_e`` and answers continue or stop. Events are processed in time order,
ties by worker number, so the outcome is deterministic. With one worker this is the
sequential study in which trial ``i`` starts when trial ``i - 1`` ends.

Under a budget of ``B`` epochs (``budget``) the replay counts every epoch trained, a
resumed trial's included, and ends the moment the ``B``-th epoch ends: the trials running
then are cut there (neither complete nor told anything). A new trial starts only while its
first rung fits in what is left once the running trials have reached theirs,

    spent + sum_{j running} max(0, first_rung - trained_j) + first_rung <= B,

(with one worker, ``spent + first_rung <= B``); a paused trial may resume while any epoch
is left, and the agent is told the epochs left, ``B - spent``, when it asks which.

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

from qhpo._checks import accepts_keyword
from qhpo.policies import Decision, TrialStatus


class ReplayAgent(Protocol):
    """What the simulator drives: a stopping rule seen through its adapter."""

    def start(self, index: int) -> None:
        """Trial ``index`` (a row of the replayed curves) starts training."""

    def report(self, index: int, epoch: int, value: float) -> bool | Decision:
        """Trial ``index`` finished ``epoch`` (1-based) with ``value``: True (or CONTINUE) to
        continue, False (or STOP) to stop, PAUSE to pause it."""

    def finish(self, index: int, status: TrialStatus) -> None:
        """Trial ``index`` ends: COMPLETE (trained to the last epoch), STOPPED, PAUSED or
        FAILED (diverged)."""

    def promote(self, limit: int, more_trials: bool = False, budget_left: int | None = None) -> list[int]:
        """Paused trials to resume now, at most ``limit`` (free workers), best first;
        ``more_trials``: a new trial starts when none resumes; ``budget_left``: epochs left
        of the budget (None: no budget)."""

    def resume(self, index: int) -> None:
        """Paused trial ``index`` continues from the epoch it paused at."""


@dataclass(frozen=True)
class ReplayOutcome:
    """What one replay produced.

    Attributes:
        epochs_trained: Epochs each trial trained, shape (n,) (a resumed trial's epochs
            counted once: it continues from its checkpoint).
        complete: Whether each trial trained to the last epoch, shape (n,).
        wallclock: Time when the last worker fell idle (epochs, or seconds when the
            curves came with seconds per epoch).
        pauses: ``(trial, epoch)`` of every pause, in the order they happened.
        resumptions: ``(trial, epoch)`` of every resumption (the epoch it resumed after).
        completed_at: Epochs spent in all (every trial's, in time order) when each trial
            completed, shape (n,); -1 for a trial that did not complete.
    """

    epochs_trained: np.ndarray
    complete: np.ndarray
    wallclock: float
    pauses: tuple[tuple[int, int], ...] = ()
    resumptions: tuple[tuple[int, int], ...] = ()
    completed_at: np.ndarray | None = None

    @property
    def cost(self) -> int:
        return int(self.epochs_trained.sum())


def _decision(answer: bool | Decision) -> Decision:
    if isinstance(answer, Decision):
        return answer
    return Decision.CONTINUE if answer else Decision.STOP


def simulate(
    curves: np.ndarray,
    agent: ReplayAgent,
    *,
    workers: int = 1,
    seconds_per_epoch: np.ndarray | None = None,
    budget: int | None = None,
    first_rung: int = 1,
) -> ReplayOutcome:
    """Replay ``curves`` (n, E), in row order, through ``agent`` on ``workers`` workers.

    Whenever workers fall free the agent is first asked which paused trials to resume
    (at most as many as there are free workers); the workers left take the next new
    trials. Once no new trial is left, free workers keep asking, and the replay ends when
    nothing runs and the agent resumes nothing.

    Args:
        curves: One learning curve per row, in the order trials start.
        agent: The stopping rule.
        workers: Number of simulated workers training trials at the same time.
        seconds_per_epoch: Per-row epoch duration; ``None`` counts time in epochs.
        budget: Epochs the whole replay may train (None: no limit; see the module docstring).
        first_rung: Epochs a new trial must be able to train within the budget to start.
    """
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise ValueError(f"curves must be a non-empty 2-d array, got shape {curves.shape}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if budget is not None and int(budget) < 1:
        raise ValueError(f"budget must be at least 1 epoch, got {budget}")
    replay = _Simulation(curves, agent, int(workers), seconds_per_epoch, budget, int(first_rung))
    replay.dispatch(0.0)
    while replay.events and replay.step():
        pass
    return replay.outcome()


class _Simulation:
    """The state of one :func:`simulate` run: the workers, the trials' epochs, the events."""

    def __init__(
        self, curves: np.ndarray, agent: ReplayAgent, workers: int, seconds_per_epoch, budget, first_rung: int
    ):
        n, epochs = curves.shape
        self.curves, self.agent, self.n, self.epochs = curves, agent, n, epochs
        self.budget, self.first_rung = budget, first_rung
        self.limit = math.inf if budget is None else int(budget)
        self.spent = 0
        self.completed_at = np.full(n, -1, dtype=int)
        self.duration = np.ones(n) if seconds_per_epoch is None else np.asarray(seconds_per_epoch, dtype=float)
        self.trained = np.zeros(n, dtype=int)
        self.complete = np.zeros(n, dtype=bool)
        self.paused: set[int] = set()
        self.pauses: list[tuple[int, int]] = []
        self.resumptions: list[tuple[int, int]] = []
        self.events: list[tuple[float, int, int]] = []  # (time the epoch ends, worker, trial)
        self.idle = list(range(workers))  # free workers, lowest number first
        self.next_trial = 0
        self.clock = 0.0
        self.active: set[int] = set()  # trials training now
        self.tells_more = accepts_keyword(agent.promote, "more_trials")  # an agent written before it: not told
        self.tells_budget = budget is not None and accepts_keyword(agent.promote, "budget_left")

    def dispatch(self, now: float) -> None:
        """Free workers resume the paused trials the agent promotes, then start new trials."""
        if self.paused and self.idle and self.spent < self.limit:
            told = {"more_trials": self.can_start()} if self.tells_more else {}
            if self.tells_budget:
                told["budget_left"] = int(self.limit - self.spent)
            for i in self.agent.promote(len(self.idle), **told)[: len(self.idle)]:
                if i not in self.paused:
                    raise ValueError(f"the agent resumed trial {i}, which is not paused")
                self.paused.discard(i)
                self.resumptions.append((i, int(self.trained[i])))
                self.agent.resume(i)
                heapq.heappush(self.events, (now + self.duration[i], self.idle.pop(0), i))
                self.active.add(i)
        while self.idle and self.can_start():
            i = self.next_trial
            self.next_trial += 1
            self.agent.start(i)
            heapq.heappush(self.events, (now + self.duration[i], self.idle.pop(0), i))
            self.active.add(i)

    def can_start(self) -> bool:
        """Whether a new trial may start: one is left, and the budget holds its first rung."""
        return self.next_trial < self.n and self.spent + self.reserved() + self.first_rung <= self.limit

    def reserved(self) -> int:
        """Epochs the running trials still train to reach the first rung (0 without a budget)."""
        if self.budget is None:
            return 0
        return sum(max(0, self.first_rung - int(self.trained[j])) for j in self.active)

    def step(self) -> bool:
        """End the next epoch and serve the workers it frees; False once the budget is spent."""
        now, worker, i = heapq.heappop(self.events)
        self.clock = now
        worker = self.epoch_end(now, worker, i)
        if self.spent >= self.limit:
            return False  # the budget is spent: the trials still running are cut here
        if worker >= 0:
            self.active.discard(i)
            self.idle.append(worker)
            self.idle.sort()
        if self.idle and not (self.events and self.events[0][0] == now):
            self.dispatch(now)  # workers falling free at the same moment are served together
        return True

    def epoch_end(self, now: float, worker: int, i: int) -> int:
        """Trial ``i``'s epoch ends: the agent's decision on it; the worker it frees (-1: none)."""
        self.trained[i] += 1
        self.spent += 1
        e = int(self.trained[i])
        value = float(self.curves[i, e - 1])
        if not math.isfinite(value):
            self.agent.finish(i, TrialStatus.FAILED)
            return worker
        decision = _decision(self.agent.report(i, e, value))
        if e >= self.epochs:
            self.complete[i] = True
            self.completed_at[i] = self.spent
            self.agent.finish(i, TrialStatus.COMPLETE)
        elif decision == Decision.CONTINUE:
            heapq.heappush(self.events, (now + self.duration[i], worker, i))
            return -1  # the worker stays busy
        elif decision == Decision.PAUSE:
            self.paused.add(i)
            self.pauses.append((i, e))
            self.agent.finish(i, TrialStatus.PAUSED)
        else:
            self.agent.finish(i, TrialStatus.STOPPED)
        return worker

    def outcome(self) -> ReplayOutcome:
        return ReplayOutcome(
            self.trained, self.complete, self.clock, tuple(self.pauses), tuple(self.resumptions), self.completed_at
        )
