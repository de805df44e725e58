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

import math
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from qhpo._checks import check_int
from qhpo.policies import StoppingPolicy
from qhpo.ray._clock_turns import _Aborted, _RayAgent, _ReplayScheduler, _Turns
from qhpo.ray._cluster import connect_ray
from qhpo.ray._replay_trials import (
    _METRIC,
    _replay_tuner,
    _RowSearcher,
    pending_trials,
    scheduler_rows,
)
from qhpo.ray._replay_trials import SchedulerRows as SchedulerRows  # public: each row's outcome
from qhpo.replay import ReplayOutcome, simulate


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
    run = _ClockedReplay(policy, params, curves, duration, workers)
    with tempfile.TemporaryDirectory(prefix="qhpo-ray-replay-") as scratch:
        tuner = _replay_tuner(
            curves,
            duration,
            policy,
            run.scheduler,
            run.searcher,
            run.turns,
            workers=workers,
            time_scale=time_scale,
            storage_path=storage_path or scratch,
        )
        results = run.fit(tuner)
    run.raise_failure(results)
    return _outcome(run.scheduler, len(curves), workers=workers, time_scale=time_scale)


class _ClockedReplay:
    """One clock-ordered replay: the simulated clock's thread, which drives the Ray trials
    through :class:`_RayAgent`, and Ray Tune's run beside it."""

    def __init__(self, policy: StoppingPolicy, params: list[dict], curves: np.ndarray, duration, workers: int):
        self.scheduler = _ReplayScheduler(policy)
        self.searcher = _RowSearcher(params, _METRIC, policy.mode)
        self.turns = _Turns.remote()
        self.aborted = threading.Event()
        self.agent = _RayAgent(self.scheduler, self.searcher, self.turns, curves, self.aborted)
        self.curves, self.duration, self.workers = curves, duration, workers
        self.clock: dict[str, Any] = {}

    def run_clock(self) -> None:
        try:
            self.clock["outcome"] = simulate(
                self.curves, self.agent, workers=self.workers, seconds_per_epoch=self.duration
            )
        except _Aborted:
            pass
        except BaseException as error:  # reported by the driver once Ray Tune has ended
            self.clock["error"] = error
        finally:
            self.scheduler.ended = True
            self.searcher.finish()
            if "outcome" not in self.clock:
                self.turns.abort.remote()  # trials waiting for an epoch end now

    def fit(self, tuner):
        """Ray Tune's results, the clock running in its own thread meanwhile."""
        thread = threading.Thread(target=self.run_clock, name="qhpo-replay-clock", daemon=True)
        thread.start()
        try:
            with pending_trials(self.workers):
                return tuner.fit()
        finally:
            self.aborted.set()
            with self.scheduler._changed:
                self.scheduler._changed.notify_all()
            thread.join()
            ray.kill(self.turns)

    def raise_failure(self, results) -> None:
        """Raise what ended the replay early: the clock's error, the scheduler's, or a trial's."""
        if "error" in self.clock:
            raise self.clock["error"]
        if self.scheduler.error is not None:
            raise self.scheduler.error
        if "outcome" not in self.clock:
            failed = [r for r in results if r.error is not None]
            why = f": {failed[0].error}" if failed else ""
            raise RuntimeError(f"the Ray replay ended before its last trial{why}")


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
