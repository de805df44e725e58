"""Replaying recorded learning curves as real Ray Tune trials on the simulated clock.

This is ``qhpo bench --backend ray-clock``; the live replay, in which Ray Tune runs the
trials as in a real search, is :func:`qhpo.ray.replay_live_on_ray` (``--backend ray``).

Each row of a curve table becomes one Ray trial that sleeps ``time_scale * d_i`` seconds
per epoch (``d_i`` the row's seconds per epoch, or 1 when the table has none) and then
reports the recorded value, so the :class:`PredictiveScheduler` stops, pauses and resumes
trials exactly as it would on real training, on ``workers`` concurrent Ray trials.

Which trial reports next follows the simulated clock of :func:`qhpo.replay.simulate`: a
driver thread runs that simulation with an agent that hands each epoch to the Ray trial
replaying that row and waits for the scheduler's decision on it, so Ray Tune receives the
results in the order of the simulated wall clock, whatever the real timing of its
workers. The scheduler decides on its own views of the Ray trials; the simulation only
says whose epoch comes next, when a worker falls free (then the scheduler asks the policy
which paused trials to promote) and which new row starts. A paused trial is paused by Ray
Tune and resumed from its Ray checkpoint. So for the same inputs the Ray replay makes the
decisions of the in-process replay on any number of workers, and the outcome counts
what the Ray trials actually reported.

The measured wall clock, divided by ``time_scale``, is in the units of the simulated wall
clock; the difference between the two is the cost of running on Ray (trial start-up,
result delivery, pausing and resuming, the scheduler's decisions).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray import tune
from ray.tune.search import Searcher

from qhpo._checks import check_int
from qhpo.policies import Decision, StoppingPolicy, TrialStatus, TrialView
from qhpo.ray._cluster import connect_ray
from qhpo.ray._scheduler import BOOKKEEPING_PREFIX, DIVERGED_KEY, PredictiveScheduler
from qhpo.replay import ReplayOutcome, simulate

_ROW_KEY = f"{BOOKKEEPING_PREFIX}row"
_METRIC = "value"
_MAX_PENDING = "TUNE_MAX_PENDING_TRIALS_PG"
#: Longest wait for one step of a Ray trial (a start, an epoch) before the replay gives up.
_STEP_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RayReplayOutcome(ReplayOutcome):
    """A :class:`qhpo.replay.ReplayOutcome` measured on Ray.

    ``epochs_trained`` counts the epochs each Ray trial reported (a resumed trial
    continues from its checkpoint, so its epochs count once), ``pauses`` and
    ``resumptions`` are the scheduler's.

    Attributes:
        wallclock: Measured seconds divided by ``time_scale`` (simulated units).
        measured_seconds: Wall-clock seconds of the Ray run, from the first trial start
            to the end of the last.
        time_scale: Real seconds per simulated second.
        workers: Concurrent Ray trials.
        decide_seconds: Seconds the scheduler spent in each policy decision.
        decisions: ``(row, epoch, decision)`` of every policy decision and resumption
            (``"resume"``, the epoch it resumed after), in the order made.
    """

    measured_seconds: float = 0.0
    time_scale: float = 1.0
    workers: int = 1
    decide_seconds: tuple[float, ...] = ()
    decisions: tuple[tuple[int, int, str], ...] = ()


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


def _is_sync_epoch(epoch: int, value: float, epochs: int, decision_epochs: frozenset[int] | None) -> bool:
    """Whether the replay's clock orders this report: where a decision reads the other trials."""
    return decision_epochs is None or epoch in decision_epochs or epoch >= epochs or not np.isfinite(value)


def _replay_trainable(
    config: dict,
    curves: np.ndarray,
    seconds_per_epoch: np.ndarray,
    time_scale: float,
    decision_epochs: frozenset[int] | None,
    turns,
):
    started_at = time.time()
    row = int(config[_ROW_KEY])
    epochs = curves.shape[1]
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # a paused trial resumes after its last reported epoch
        with checkpoint.as_directory() as folder:
            with open(f"{folder}/epoch") as handle:
                start = int(handle.read())
    for epoch in range(start + 1, epochs + 1):
        if time_scale > 0:
            time.sleep(time_scale * seconds_per_epoch[row])
        value = float(curves[row, epoch - 1])
        if (
            turns is not None
            and _is_sync_epoch(epoch, value, epochs, decision_epochs)
            and not ray.get(turns.wait.remote(row, epoch))
        ):
            return  # the replay was aborted
        metrics = {_METRIC: value, "epoch": epoch, "started_at": started_at, "reported_at": time.time()}
        if not np.isfinite(value):
            # Training diverged: the epoch was trained and the trial ends here, as a
            # training loop that checks its loss ends it.
            tune.report({**metrics, DIVERGED_KEY: "non-finite value"})
            return
        if decision_epochs is not None and epoch not in decision_epochs:
            tune.report(metrics)
            continue
        # Only a decision epoch can pause the trial, so only there a checkpoint is needed.
        with tempfile.TemporaryDirectory() as folder:
            with open(f"{folder}/epoch", "w") as handle:
                handle.write(str(epoch))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


class _RowSearcher(Searcher):
    """Suggests the rows the simulated replay starts, in that order, and no others."""

    def __init__(self, params: list[dict], metric: str, mode: str):
        super().__init__(metric=metric, mode=mode)
        self._params = params
        self._allowed: deque[int] = deque()
        self._finished = False

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def allow(self, row: int) -> None:
        self._allowed.append(row)

    def finish(self) -> None:
        self._finished = True

    def suggest(self, trial_id: str):
        if self._allowed:
            row = self._allowed.popleft()
            return {**self._params[row], _ROW_KEY: row}
        return Searcher.FINISHED if self._finished else None

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass


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
        self.__dict__.update(state)
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
                views.append(
                    view if view.epochs <= cut else TrialView(view.key, view.curve[:cut], view.params, view.status)
                )
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

    def promote(self, limit: int) -> list[str]:
        with self._lock:
            return super().promote(limit)

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

    def __init__(self, scheduler: _ReplayScheduler, searcher: _RowSearcher, turns, curves, decision_epochs, aborted):
        self.scheduler = scheduler
        self.searcher = searcher
        self.turns = turns
        self.curves = curves
        self.decision_epochs = decision_epochs
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
        if _is_sync_epoch(epoch, value, self.curves.shape[1], self.decision_epochs):
            return _DECISION[self._turn(index, epoch, trained=True)]
        with self.scheduler._lock:
            self.scheduler.clock_epochs[index] = epoch
        return Decision.CONTINUE  # no decision here: the scheduler continues every trial

    def finish(self, index: int, status: TrialStatus) -> None:
        if status == TrialStatus.FAILED:  # the diverged epoch, which the in-process agent never sees
            self._turn(index, self.scheduler.clock_epochs[index] + 1, trained=False)

    def promote(self, limit: int) -> list[int]:
        self._wait(self.scheduler.caught_up, "the Ray trials to report the epochs they trained")
        return [self.scheduler.row_of[trial_id] for trial_id in self.scheduler.promote(limit)]

    def resume(self, index: int) -> None:
        pass  # the scheduler queued the trial for Ray Tune when it promoted it


def replay_on_ray(
    curves,
    policy: StoppingPolicy,
    *,
    params: Sequence[Mapping[str, Any]] | None = None,
    workers: int = 1,
    seconds_per_epoch=None,
    time_scale: float = 0.01,
    address: str | None = None,
    storage_path: str | None = None,
) -> RayReplayOutcome:
    """Replay ``curves`` (n, E), in row order, as Ray trials decided by ``policy``.

    Trials start in row order, at most ``workers`` at a time, and a worker that falls free
    first resumes the paused trials the policy promotes, as in
    :func:`qhpo.replay.simulate`, whose clock orders the Ray trials' reports: with a
    policy that refits synchronously the decisions (pauses, resumptions, stops) and the
    epochs trained are exactly those of the in-process replay, on any number of workers.
    A row whose curve turns non-finite ends at that epoch, which counts as trained.

    Example:
        >>> from qhpo.curves import read_curve_table, resolve_curve_table
        >>> from qhpo.policies import make_policy
        >>> table = read_curve_table(resolve_curve_table("cifar10_cnn")).take(range(20)).truncate(30)
        >>> policy = make_policy("qhpo", max_epochs=30)
        >>> outcome = replay_on_ray(table.curves, policy, params=table.param_rows(), workers=2)  # doctest: +SKIP

    Args:
        curves: One recorded learning curve per row.
        policy: The stopping policy (its ``mode`` says which way the metric is better).
        params: Hyperparameters of each row (what the policy sees), or None.
        workers: Concurrent Ray trials (each takes ``1/workers`` of the cluster's CPUs).
        seconds_per_epoch: Per-row epoch duration in simulated seconds (None: 1 per epoch).
        time_scale: Real seconds slept per simulated second.
        address: Ray cluster to use (None: the running one, or a local one).
        storage_path: Folder of Ray Tune's experiment files (None: a temporary folder).
    """
    curves, params, duration = _checked_inputs(curves, policy, params, seconds_per_epoch)
    workers = check_int("workers", workers, least=1)
    if not float(time_scale) > 0:
        raise ValueError(f"time_scale must be positive, got {time_scale}")
    time_scale = float(time_scale)
    connect_ray(address, quiet=True)
    scheduler = _ReplayScheduler(policy)
    searcher = _RowSearcher(params, _METRIC, policy.mode)
    turns = _Turns.remote()
    aborted = threading.Event()
    decision_epochs = policy.decision_epochs()
    decision_epochs = None if decision_epochs is None else frozenset(int(e) for e in decision_epochs)
    agent = _RayAgent(scheduler, searcher, turns, curves, decision_epochs, aborted)
    clock: dict[str, Any] = {}

    def run_clock() -> None:
        try:
            clock["outcome"] = simulate(curves, agent, workers=workers, seconds_per_epoch=duration)
        except _Aborted:
            pass
        except BaseException as error:  # reported by the driver once Ray Tune has ended
            clock["error"] = error
        finally:
            scheduler.ended = True
            searcher.finish()
            if "outcome" not in clock:
                turns.abort.remote()  # trials waiting for an epoch end now

    with tempfile.TemporaryDirectory(prefix="qhpo-ray-replay-") as scratch:
        tuner = _replay_tuner(
            curves,
            duration,
            policy,
            scheduler,
            searcher,
            turns,
            workers=workers,
            time_scale=time_scale,
            storage_path=storage_path or scratch,
        )
        thread = threading.Thread(target=run_clock, name="qhpo-replay-clock", daemon=True)
        thread.start()
        try:
            with pending_trials(workers):
                results = tuner.fit()
        finally:
            aborted.set()
            with scheduler._changed:
                scheduler._changed.notify_all()
            thread.join()
            ray.kill(turns)
    if "error" in clock:
        raise clock["error"]
    if scheduler.error is not None:
        raise scheduler.error
    if "outcome" not in clock:
        failed = [r for r in results if r.error is not None]
        why = f": {failed[0].error}" if failed else ""
        raise RuntimeError(f"the Ray replay ended before its last trial{why}")
    return _outcome(scheduler, len(curves), workers=workers, time_scale=time_scale)


@contextlib.contextmanager
def pending_trials(workers: int):
    """Let Ray Tune create ``workers`` trials of a custom searcher before the first one starts.

    Ray Tune creates one such trial at a time unless told otherwise, and so would start a
    replay's first workers one after the other.
    """
    pending = os.environ.get(_MAX_PENDING)
    os.environ[_MAX_PENDING] = pending or str(workers)
    try:
        yield
    finally:
        if pending is None:
            os.environ.pop(_MAX_PENDING, None)


def _checked_inputs(curves, policy: StoppingPolicy, params, seconds_per_epoch):
    """``(curves, params, seconds per epoch)`` as arrays and lists, one entry per row."""
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise ValueError(f"curves must be a non-empty 2-d array, got shape {curves.shape}")
    n, epochs = curves.shape
    if epochs != policy.max_epochs:
        raise ValueError(f"curves must have policy.max_epochs={policy.max_epochs} columns, got {epochs}")
    params = [dict(p) for p in params] if params is not None else [{} for _ in range(n)]
    if len(params) != n:
        raise ValueError(f"params must hold one mapping per row ({n}), got {len(params)}")
    duration = np.ones(n) if seconds_per_epoch is None else np.asarray(seconds_per_epoch, dtype=float)
    return curves, params, duration


def _replay_tuner(
    curves: np.ndarray,
    duration: np.ndarray,
    policy: StoppingPolicy,
    scheduler: PredictiveScheduler,
    searcher,
    turns,
    *,
    workers: int,
    time_scale: float,
    storage_path: str,
    name: str = "replay",
    callbacks: Sequence = (),
) -> tune.Tuner:
    """A Tuner whose trials are the rows the searcher (a Searcher or a SearchAlgorithm) starts, each on
    ``1/workers`` of the CPUs; ``turns`` None lets every trial report as soon as its epoch is slept."""
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    decision_epochs = policy.decision_epochs()
    decision_epochs = None if decision_epochs is None else frozenset(int(e) for e in decision_epochs)
    trainable = tune.with_resources(
        tune.with_parameters(
            _replay_trainable,
            curves=curves,
            seconds_per_epoch=duration,
            time_scale=time_scale,
            decision_epochs=decision_epochs,
            turns=turns,
        ),
        {"cpu": cpus / workers},
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=_METRIC,
            mode=policy.mode,
            scheduler=scheduler,
            num_samples=len(curves),
            # The search decides which row starts when; no max_concurrent_trials (it would
            # count paused trials as busy and starve the trials waiting behind them).
            search_alg=searcher,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=storage_path,
            name=name,
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=list(callbacks),
        ),
    )


def _outcome(scheduler: _ReplayScheduler, n: int, *, workers: int, time_scale: float) -> RayReplayOutcome:
    """Epochs, completions, pauses and resumptions per row as the Ray trials reported them."""
    rows = scheduler_rows(scheduler, scheduler.row_of, n)
    measured = scheduler.last_report - scheduler.first_start
    measured = float(measured) if math.isfinite(measured) and measured > 0 else 0.0
    return RayReplayOutcome(
        epochs_trained=rows.epochs_trained,
        complete=rows.complete,
        wallclock=measured / time_scale,
        pauses=rows.pauses,
        resumptions=rows.resumptions,
        measured_seconds=measured,
        time_scale=time_scale,
        workers=workers,
        decide_seconds=tuple(scheduler.decide_seconds_),
        decisions=rows.decisions,
    )


@dataclass(frozen=True)
class SchedulerRows:
    """What a :class:`PredictiveScheduler` did to each row of a replay.

    Attributes:
        epochs_trained: Epochs each row's Ray trial reported (a resumed trial goes on from
            its checkpoint, so its epochs count once; a diverged epoch counts).
        complete: Whether each row was trained to the last epoch.
        pauses, resumptions: ``(row, epoch)`` of each pause and resumption, in the order made.
        decisions: ``(row, epoch, decision)`` of every policy decision and resumption.
    """

    epochs_trained: np.ndarray
    complete: np.ndarray
    pauses: tuple[tuple[int, int], ...]
    resumptions: tuple[tuple[int, int], ...]
    decisions: tuple[tuple[int, int, str], ...]


def scheduler_rows(scheduler: PredictiveScheduler, row_of: Mapping[str, int], n: int) -> SchedulerRows:
    """The rows' outcome from ``scheduler``'s records, ``row_of`` mapping each Ray trial id to its row."""
    trained = np.zeros(n, dtype=int)
    complete = np.zeros(n, dtype=bool)
    for trial_id, record in scheduler._records.items():
        row = row_of[trial_id]
        trained[row] = len(record.curve)
        complete[row] = record.status == TrialStatus.COMPLETE
    decisions = tuple((row_of[key], int(epoch), decision) for key, epoch, decision in scheduler.decisions_)
    return SchedulerRows(
        trained,
        complete,
        tuple((row, epoch) for row, epoch, decision in decisions if decision == "pause"),
        tuple((row, epoch) for row, epoch, decision in decisions if decision == "resume"),
        decisions,
    )
