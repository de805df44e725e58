"""The live replay on Ray: a table's drawn rows as real Ray Tune trials, decided as they arrive.

Where :func:`qhpo.ray.replay_on_ray` orders every epoch by the simulated clock of
:func:`qhpo.replay.simulate`, the live replay lets Ray Tune run as it runs a real search
(``qhpo bench --backend ray``). The drawn rows, in the seed's order, are the trials of one
Tuner run on a local Ray cluster, at most ``workers`` of them running at once
(:class:`RunningTrialLimiter`, which leaves paused trials out). Each trial is a function
trainable that sleeps ``epoch_seconds * d_j / mean(d)`` per epoch (:class:`qhpo.replay.EpochClock`)
and reports the row's value with ``tune.report(metrics, checkpoint=...)``, a checkpoint at
each epoch where the policy decides. The real :class:`PredictiveScheduler`, built from the
rule's name, decides on the results in the order Ray Tune delivers them, with its
background fits landing mid-run; a paused trial is paused by Ray Tune and restarts from
its Ray checkpoint when the scheduler promotes it to a freed place. Only the training is
replaced.

With ``settle`` the scheduler's policy fits inline (``background=False``), so each decision
reads the model fitted on the curves it sees. One worker with ``settle`` then makes the
decisions of the in-process replay (:func:`qhpo.replay.replay_rule`) on the same seed: one
trial runs at a time, a freed place goes first to the paused trials the policy resumes and
then to the next row, as in :func:`qhpo.replay.simulate`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune import Callback

from qhpo._rules import RuleKind, rule_names
from qhpo.curves import CurveTable
from qhpo.ray._cluster import connect_ray
from qhpo.ray._replay_trials import _METRIC, _ROW_KEY, _replay_tuner, _RowSearcher, pending_trials, scheduler_rows
from qhpo.ray._scheduler import PredictiveScheduler, RunningTrialLimiter
from qhpo.replay import EpochClock, LiveSettings, SeedResult, check_workers, leave_out_of_prior, live_stem

#: Rules the live Ray replay runs as Ray trials (qhpo's policies; Optuna's pruners and
#: Swift-Hyperband are replayed in-process).
RAY_LIVE_RULES = rule_names(RuleKind.POLICY)


class _Timeline(Callback):
    """Each Ray trial's row, and the real time from the first trial start to the last result."""

    def __init__(self):
        self.row_of: dict[str, int] = {}
        self.first, self.last = math.inf, -math.inf

    def on_trial_start(self, iteration, trials, trial, **info):
        self.row_of[trial.trial_id] = int(trial.config[_ROW_KEY])
        self.first = min(self.first, time.perf_counter())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last = max(self.last, time.perf_counter())

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.last = max(self.last, time.perf_counter())

    def seconds(self) -> float:
        elapsed = self.last - self.first
        return float(elapsed) if math.isfinite(elapsed) and elapsed > 0 else 0.0


def replay_live_on_ray(
    name: str,
    table: CurveTable,
    *,
    seed: int,
    live: LiveSettings,
    workers: int = 1,
    predictor: Any = "svr",
    sampler: Any = None,
    options: dict | None = None,
) -> SeedResult:
    """Replay rule ``name`` on ``table`` (already drawn and ordered) as live Ray Tune trials.

    Example:
        >>> from qhpo.curves import read_curve_table, resolve_curve_table
        >>> from qhpo.replay import LiveSettings, draw_order
        >>> table = read_curve_table(resolve_curve_table("cifar10_cnn")).truncate(20)
        >>> drawn = table.take(draw_order(table.n_trials, 20, 0))
        >>> live = LiveSettings(backend="ray", epoch_seconds=0.01)
        >>> outcome = replay_live_on_ray("qhpo", drawn, seed=0, live=live, workers=2)  # doctest: +SKIP

    Args:
        name: A rule of :data:`RAY_LIVE_RULES` (a qhpo policy).
        table: The drawn rows, in the order trials start.
        seed: The seed (the policy's ``random_state``).
        live: Epoch time, settling, and where Ray Tune's experiment is kept (``folder``).
        workers: Trials running at once, each on ``1/workers`` of the cluster's CPUs.
        predictor, sampler, options: As for :func:`qhpo.replay.replay_rule`.

    Returns:
        The :class:`qhpo.replay.SeedResult` read back from the scheduler; ``wallclock`` is
        the real time from the first trial start to the last result, in the table's units
        (epochs, or seconds when it records seconds per epoch) when ``epoch_seconds > 0``,
        else in seconds.
    """
    if name not in RAY_LIVE_RULES:
        raise ValueError(f"name must be one of {', '.join(RAY_LIVE_RULES)}, got {name!r}")
    workers = check_workers(workers)
    connect_ray(None, quiet=True)
    scheduler = _live_scheduler(name, table, seed, live, predictor, sampler, options)
    policy = scheduler.stopping_policy
    searcher = _searcher_of_every_row(table)
    clock = EpochClock.of(table, live.epoch_seconds)
    timeline = _Timeline()
    folder = Path(tempfile.mkdtemp(prefix="qhpo-ray-live-")) if live.folder is None else Path(live.folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = live_stem(table, name, seed, workers)
        shutil.rmtree(folder / stem, ignore_errors=True)  # a rerun into the same folder starts afresh
        tuner = _live_tuner(table, clock, scheduler, searcher, timeline, workers, folder, stem)
        with pending_trials(workers):
            results = tuner.fit()
    finally:
        service = _closed_service(policy)
        if live.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    _check_every_row_ran(results, timeline, table, f"the live Ray replay of {name} on seed {seed}")
    return _seed_result(scheduler, timeline, clock, service, table.n_trials)


def _live_scheduler(name, table, seed, live, predictor, sampler, options) -> PredictiveScheduler:
    """The scheduler of rule ``name``; its options' prior fitted without ``table``."""
    options = leave_out_of_prior(options, table)  # a copy, its prior fitted without this table
    options["background"] = not live.settle and options.get("background", True)
    return PredictiveScheduler(
        name,
        max_epochs=table.epochs,
        mode=table.mode,
        metric=_METRIC,
        epoch_attr="epoch",
        predictor=predictor,
        sampler=sampler,
        random_state=seed,
        **options,
    )


def _searcher_of_every_row(table: CurveTable) -> _RowSearcher:
    """A searcher that starts every row of ``table`` once, in the seed's order."""
    searcher = _RowSearcher(table.param_rows(), _METRIC, table.mode)
    for row in range(table.n_trials):  # rows start in the seed's order, each once
        searcher.allow(row)
    searcher.finish()
    return searcher


def _live_tuner(table, clock, scheduler, searcher, timeline, workers: int, folder: Path, stem: str):
    """Ray Tune's run of every row, at most ``workers`` trials running (paused ones aside)."""
    return _replay_tuner(
        np.asarray(table.curves, dtype=float),
        clock.duration,
        scheduler.stopping_policy,
        scheduler,
        RunningTrialLimiter(searcher, workers, scheduler),
        None,
        workers=workers,
        time_scale=clock.scale,
        storage_path=str(folder.resolve()),
        name=stem,
        callbacks=[timeline],
    )


def _closed_service(policy):
    """The policy's prediction service, closed (None for a policy without one)."""
    service = policy.prediction_service
    if service is not None:
        service.close()
    return service


def _check_every_row_ran(results, timeline, table: CurveTable, what: str) -> None:
    """RuntimeError when a trial failed or a row never started."""
    failed = [r.error for r in results if r.error is not None]
    started = set(timeline.row_of.values())
    if failed or started != set(range(table.n_trials)):
        why = f": {failed[0]}" if failed else f"; {table.n_trials - len(started)} rows never started"
        raise RuntimeError(f"{what} failed{why}")


def _seed_result(scheduler, timeline, clock, service, n_rows: int) -> SeedResult:
    """The seed's result read back from the scheduler's records and the trials' timeline."""
    rows = scheduler_rows(scheduler, timeline.row_of, n_rows)
    seconds = 0.0 if service is None else float(service.fit_seconds + service.predict_seconds)
    return SeedResult(
        rows.epochs_trained,
        rows.complete,
        clock.units(timeline.seconds()),
        seconds,
        rows.pauses,
        rows.resumptions,
    )
