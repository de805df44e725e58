"""The turns by which the simulated clock orders a Ray replay: the actor that grants each trial
its turn, the scheduler that waits for the clock's decisions, and the agent the simulator drives."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
from typing import Any

import ray

from qhpo.policies import Decision, StoppingPolicy, TrialStatus, TrialView
from qhpo.ray._replay_trials import _ROW_KEY, _is_sync_epoch, _RowSearcher
from qhpo.ray._scheduler import PredictiveScheduler

#: Longest wait for one step of a Ray trial (a start, an epoch) before the replay gives up.
_STEP_TIMEOUT_S = 600.0


class _Aborted(Exception):
    """The Ray run ended before the simulated replay did."""


@ray.remote(num_cpus=0)
class _Turns:
    """Hands out the replayed epochs: a trial reports epoch ``e`` of row ``i`` once granted."""

    def __init__(self):
        self._granted: set[tuple[int, int]] = set()
        self._waiting: dict[tuple[int, int], asyncio.Event] = {}
        self._aborted = False

    async def wait(self, row: int, epoch: int) -> bool:
        """Wait until epoch ``epoch`` of ``row`` is granted; False when the replay was aborted."""
        key = (row, epoch)
        if key not in self._granted and not self._aborted:
            await self._waiting.setdefault(key, asyncio.Event()).wait()
        return not self._aborted

    async def grant(self, row: int, epoch: int) -> None:
        self._granted.add((row, epoch))
        if (row, epoch) in self._waiting:
            self._waiting.pop((row, epoch)).set()

    async def abort(self) -> None:
        self._aborted = True
        for event in self._waiting.values():
            event.set()


class _ReplayScheduler(PredictiveScheduler):
    """The predictive scheduler with a row's number as its trial key, driven by the replay clock.

    Views hold every trial the replay started, in start order, each curve cut at the
    epochs the simulated replay has trained by now (a Ray trial may have run ahead to its
    next decision epoch), as the in-process replay shows them. The policy is asked to
    promote when the simulated replay frees workers (:class:`_RayAgent`), not when Ray
    Tune does.
    """

    def __init__(self, policy: StoppingPolicy):
        super().__init__(policy, epoch_attr="epoch")
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.row_of: dict[str, int] = {}
        self.last_epoch: dict[int, int] = {}  # the epoch of each row's latest result
        self.clock_epochs: dict[int, int] = {}  # epochs each row has trained on the replay's clock
        self.granted: dict[int, int] = {}  # each row's latest epoch granted a turn
        self._answers: dict[tuple[int, int], str] = {}
        self.ended = False
        self.error: Exception | None = None
        self.first_start, self.last_report = math.inf, -math.inf

    def __getstate__(self):
        state = super().__getstate__()
        del state["_lock"], state["_changed"]  # Ray Tune pickles its scheduler into the experiment
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    def _key(self, trial_id: str):
        return self.row_of[trial_id]

    def trial_views(self) -> list[TrialView]:
        with self._lock:
            views = []
            for trial_id, record in self._records.items():
                view = self._view(trial_id, record)
                cut = self.clock_epochs.get(view.key, 0)
                views.append(view if view.epochs <= cut else dataclasses.replace(view, curve=view.curve[:cut]))
            return views

    def _promotes_on_free(self) -> bool:
        return False

    def _search_over(self, tune_controller, trials) -> bool:
        return self.ended and super()._search_over(tune_controller, trials)

    def on_trial_add(self, tune_controller, trial):
        with self._changed:
            self.row_of[trial.trial_id] = int(trial.config[_ROW_KEY])
            super().on_trial_add(tune_controller, trial)
            self._changed.notify_all()

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        with self._changed:
            row = self.row_of[trial.trial_id]
            epoch = int(result.get("epoch", 0))
            if epoch != self.last_epoch.get(row, 0) + 1 and self.error is None:
                self.error = RuntimeError(
                    f"the Ray trial of row {row} reported epoch {epoch} after epoch {self.last_epoch.get(row, 0)}; "
                    "a resumed trial must go on from its checkpoint"
                )
            self.last_epoch[row] = epoch
            self.first_start = min(self.first_start, float(result.get("started_at", math.inf)))
            self.last_report = max(self.last_report, float(result.get("reported_at", -math.inf)))
            answer = super().on_trial_result(tune_controller, trial, result)
            if self.granted.get(row) != epoch and answer != "CONTINUE" and self.error is None:
                self.error = RuntimeError(f"the scheduler ended row {row} at epoch {epoch}, off the replay's clock")
            self._answers[(row, epoch)] = answer
            self._changed.notify_all()
            return answer

    def choose_trial_to_run(self, tune_controller):
        with self._lock:
            return super().choose_trial_to_run(tune_controller)

    def promote(self, limit: int, more_trials: bool = False) -> list[str]:
        with self._lock:
            return super().promote(limit, more_trials)

    def wait_until(self, ready, what: str, aborted) -> Any:
        """Wait for ``ready()`` to return something other than None (the Ray side acts on its own)."""
        deadline = time.monotonic() + _STEP_TIMEOUT_S
        with self._changed:
            while True:
                if self.error is not None or aborted():
                    raise _Aborted(what)
                value = ready()
                if value is not None:
                    return value
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Ray replay waited {_STEP_TIMEOUT_S:.0f} s for {what}")
                self._changed.wait(timeout=0.5)

    def caught_up(self) -> bool | None:
        """True once every row has reported the epochs it trained on the replay's clock."""
        behind = any(self.last_epoch.get(row, 0) < epochs for row, epochs in self.clock_epochs.items())
        return None if behind else True


_DECISION = {"CONTINUE": Decision.CONTINUE, "STOP": Decision.STOP, "PAUSE": Decision.PAUSE}


class _RayAgent:
    """The simulated replay's agent whose trials run on Ray.

    Each step of :func:`qhpo.replay.simulate` becomes an action on the Ray side. A start
    lets the searcher create the row's trial and waits until Ray Tune has added it. Between
    decision epochs a trial trains on its own; at a decision epoch, at its last epoch and
    at a non-finite value (where the scheduler may end it, or a worker falls free) the
    agent waits until every trial has reported the epochs it trained on the clock, grants
    the trial its turn, and returns the scheduler's decision on it. A promotion asks the
    scheduler (and through it the policy), which queues the promoted trials for Ray Tune
    to unpause.
    """

    def __init__(self, scheduler: _ReplayScheduler, searcher: _RowSearcher, turns, curves, aborted):
        self.scheduler = scheduler
        self.searcher = searcher
        self.turns = turns
        self.curves = curves
        self.aborted = aborted

    def _wait(self, ready, what: str):
        return self.scheduler.wait_until(ready, what, self.aborted.is_set)

    def start(self, index: int) -> None:
        scheduler = self.scheduler
        with scheduler._lock:
            scheduler.clock_epochs[index] = 0
        self.searcher.allow(index)
        self._wait(lambda: True if index in scheduler.row_of.values() else None, f"the Ray trial of row {index}")

    def _turn(self, index: int, epoch: int, *, trained: bool) -> str:
        """Grant ``epoch`` of row ``index`` its turn once all trials caught up; the scheduler's answer."""
        scheduler = self.scheduler
        self._wait(scheduler.caught_up, "the Ray trials to report the epochs they trained")
        with scheduler._lock:
            scheduler.granted[index] = epoch
            if trained:  # the decision on this epoch sees the trial's curve up to it
                scheduler.clock_epochs[index] = epoch
        self.turns.grant.remote(index, epoch)
        return self._wait(lambda: scheduler._answers.get((index, epoch)), f"epoch {epoch} of row {index}")

    def report(self, index: int, epoch: int, value: float) -> Decision:
        if _is_sync_epoch(epoch, value, self.curves.shape[1], self.scheduler.driver.epochs):
            return _DECISION[self._turn(index, epoch, trained=True)]
        with self.scheduler._lock:
            self.scheduler.clock_epochs[index] = epoch
        return Decision.CONTINUE  # no decision here: the scheduler continues every trial

    def finish(self, index: int, status: TrialStatus) -> None:
        if status == TrialStatus.FAILED:  # the diverged epoch, which the in-process agent never sees
            self._turn(index, self.scheduler.clock_epochs[index] + 1, trained=False)

    def promote(self, limit: int, more_trials: bool = False) -> list[int]:
        self._wait(self.scheduler.caught_up, "the Ray trials to report the epochs they trained")
        return [self.scheduler.row_of[trial_id] for trial_id in self.scheduler.promote(limit, more_trials)]

    def resume(self, index: int) -> None:
        pass  # the scheduler queued the trial for Ray Tune when it promoted it
