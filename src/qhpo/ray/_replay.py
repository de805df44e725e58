"""Replaying recorded learning curves as real Ray Tune trials.

Each row of a curve table becomes one Ray trial that sleeps ``time_scale * d_i`` seconds
per epoch (``d_i`` the row's seconds per epoch, or 1 when the table has none) and then
reports the recorded value, so the :class:`PredictiveScheduler` stops trials exactly as it
would on real training, on ``workers`` concurrent Ray trials. The measured wall clock,
divided by ``time_scale``, is in the units of :func:`qhpo.replay.simulate`'s simulated
wall clock; the difference between the two is the cost of running on Ray (trial start-up,
result delivery, the scheduler's decisions).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator

from qhpo._checks import check_int
from qhpo.policies import StoppingPolicy, TrialStatus
from qhpo.ray._cluster import connect_ray
from qhpo.ray._scheduler import BOOKKEEPING_PREFIX, PredictiveScheduler
from qhpo.replay import ReplayOutcome

_ROW_KEY = f"{BOOKKEEPING_PREFIX}row"
_METRIC = "value"


@dataclass(frozen=True)
class RayReplayOutcome(ReplayOutcome):
    """A :class:`qhpo.replay.ReplayOutcome` measured on Ray.

    Attributes:
        wallclock: Measured seconds divided by ``time_scale`` (simulated units).
        measured_seconds: Wall-clock seconds of the Ray run, from the first trial start
            to the end of the last.
        time_scale: Real seconds per simulated second.
        workers: Concurrent Ray trials.
        decide_seconds: Seconds the scheduler spent in each policy decision.
        decisions: ``(row, epoch, decision)`` of every policy decision, in the order made.
    """

    measured_seconds: float = 0.0
    time_scale: float = 1.0
    workers: int = 1
    decide_seconds: tuple[float, ...] = ()
    decisions: tuple[tuple[int, int, str], ...] = ()


def _replay_trainable(
    config: dict,
    curves: np.ndarray,
    seconds_per_epoch: np.ndarray,
    time_scale: float,
    pause_epochs: frozenset[int] | None,
):
    started_at = time.time()
    row = int(config[_ROW_KEY])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # a paused trial resumes after its last reported epoch
        with checkpoint.as_directory() as folder:
            start = int(open(f"{folder}/epoch").read())
    for epoch in range(start + 1, curves.shape[1] + 1):
        time.sleep(time_scale * seconds_per_epoch[row])
        metrics = {
            _METRIC: float(curves[row, epoch - 1]),
            "epoch": epoch,
            "started_at": started_at,
            "reported_at": time.time(),
        }
        if pause_epochs is not None and epoch not in pause_epochs:
            tune.report(metrics)
            continue
        # Only a decision epoch can pause the trial, so only there a checkpoint is needed.
        with tempfile.TemporaryDirectory() as folder:
            with open(f"{folder}/epoch", "w") as handle:
                handle.write(str(epoch))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


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

    Trials start in row order, at most ``workers`` at a time, as in
    :func:`qhpo.replay.simulate`; with ``workers=1`` and a policy that refits
    synchronously the decisions are exactly those of the simulated replay.

    Example:
        >>> from qhpo.curves import read_curve_table, resolve_curve_table
        >>> from qhpo.policies import make_policy
        >>> table = read_curve_table(resolve_curve_table("cifar10_cnn")).take(range(20)).truncate(30)
        >>> policy = make_policy("qhpo", max_epochs=30, background=True)
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
    scheduler = PredictiveScheduler(policy, epoch_attr="epoch")
    with tempfile.TemporaryDirectory(prefix="qhpo-ray-replay-") as scratch:
        tuner = _replay_tuner(
            curves,
            params,
            duration,
            policy,
            scheduler,
            workers=workers,
            time_scale=time_scale,
            storage_path=storage_path or scratch,
        )
        results = tuner.fit()
    return _outcome(results, scheduler, len(curves), workers=workers, time_scale=time_scale)


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
    params: list[dict],
    duration: np.ndarray,
    policy: StoppingPolicy,
    scheduler: PredictiveScheduler,
    *,
    workers: int,
    time_scale: float,
    storage_path: str,
) -> tune.Tuner:
    """A Tuner that starts one trial per row, in row order, each on ``1/workers`` of the CPUs."""
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    decision_epochs = policy.decision_epochs()
    pause_epochs = None if decision_epochs is None else frozenset(int(e) for e in decision_epochs)
    points = [{**row_params, _ROW_KEY: i} for i, row_params in enumerate(params)]
    trainable = tune.with_resources(
        tune.with_parameters(
            _replay_trainable,
            curves=curves,
            seconds_per_epoch=duration,
            time_scale=time_scale,
            pause_epochs=pause_epochs,
        ),
        {"cpu": cpus / workers},
    )
    return tune.Tuner(
        trainable,
        param_space={key: None for key in points[0]},  # every key of the points must be in the space
        tune_config=tune.TuneConfig(
            metric=_METRIC,
            mode=policy.mode,
            scheduler=scheduler,
            num_samples=len(points),
            # Workers are limited by CPUs, not by a concurrency cap that would count
            # paused trials as busy and starve the trials waiting behind them.
            search_alg=BasicVariantGenerator(points_to_evaluate=points),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=storage_path, name="replay", verbose=0, checkpoint_config=tune.CheckpointConfig(num_to_keep=1)
        ),
    )


def _outcome(results, scheduler: PredictiveScheduler, n: int, *, workers: int, time_scale: float) -> RayReplayOutcome:
    """Epochs and completion per row from the scheduler's views; the wall clock from the reports."""
    trained = np.zeros(n, dtype=int)
    complete = np.zeros(n, dtype=bool)
    first_start, last_report = np.inf, -np.inf
    views = {view.key: view for view in scheduler.trial_views()}
    row_of = {}
    for result in results:
        row = int(result.config[_ROW_KEY])
        row_of[result.metrics.get("trial_id")] = row
        view = views.get(result.metrics.get("trial_id"))
        if view is not None:
            trained[row] = view.epochs
            complete[row] = view.status == TrialStatus.COMPLETE
        frame = result.metrics_dataframe
        if frame is not None and len(frame):
            first_start = min(first_start, float(frame["started_at"].min()))
            last_report = max(last_report, float(frame["reported_at"].max()))
    measured = float(last_report - first_start) if np.isfinite(first_start) else 0.0
    return RayReplayOutcome(
        epochs_trained=trained,
        complete=complete,
        wallclock=measured / time_scale,
        measured_seconds=measured,
        time_scale=time_scale,
        workers=workers,
        decide_seconds=tuple(scheduler.decide_seconds_),
        decisions=tuple((row_of[key], epoch, decision) for key, epoch, decision in scheduler.decisions_),
    )
