"""The Ray Tune side of a replay: the trainable that replays a row's recorded curve, the searcher
that starts the rows, the tuner, and each row's outcome read back from the scheduler."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import ray
from ray import tune
from ray.tune.search import Searcher

from qhpo.policies import DecisionEpochs, StoppingPolicy, TrialStatus
from qhpo.ray._scheduler import BOOKKEEPING_PREFIX, DIVERGED_KEY, PredictiveScheduler

_ROW_KEY = f"{BOOKKEEPING_PREFIX}row"
_METRIC = "value"
_MAX_PENDING = "TUNE_MAX_PENDING_TRIALS_PG"


def _is_sync_epoch(epoch: int, value: float, epochs: int, decision_epochs: DecisionEpochs) -> bool:
    """Whether the replay's clock orders this report: where a decision reads the other trials."""
    return decision_epochs.decides_at(epoch) or epoch >= epochs or not np.isfinite(value)


def _replay_trainable(
    config: dict,
    curves: np.ndarray,
    seconds_per_epoch: np.ndarray,
    time_scale: float,
    decision_epochs: DecisionEpochs,
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
        if not decision_epochs.decides_at(epoch):
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
    trainable = tune.with_resources(
        tune.with_parameters(
            _replay_trainable,
            curves=curves,
            seconds_per_epoch=duration,
            time_scale=time_scale,
            decision_epochs=scheduler.driver.epochs,
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
