"""The CIFAR-10 trial as a Ray Tune function trainable.

Per epoch ``e`` the trial trains one epoch with :class:`qhpo.workload.TrialTrainer` and
reports the validation accuracy. At a decision epoch of the policy, at the last epoch, and
when ``checkpoint_seconds`` have passed since the last checkpoint, the report carries the
trainer's checkpoint (model, optimiser, curve): a trial that Ray pauses at a decision goes
on from epoch ``e + 1``, and one that an interrupted experiment restores repeats at most
``checkpoint_seconds`` of training (plus the time since Ray Tune last saved the experiment
state: 10 s by default, longer when a save is slow). Ray Tune keeps every checkpoint until the search ends, so one
per epoch of every trial would fill the disk of a long search. A resumed trial continues as the
uninterrupted one would, bit for bit on the CPU and with the same batches but other
rounding on a GPU (docs/workload.md). Each worker process loads the data once and keeps
it for the trials it runs next (``reuse_actors=True``).
"""

from __future__ import annotations

import math
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from qhpo.ray._scheduler import BOOKKEEPING_PREFIX, DIVERGED_KEY

#: Result key of the validation accuracy, the metric the search maximises.
METRIC = "accuracy"
#: Result key counting epochs from 1.
EPOCH_KEY = "epoch"
#: Config key with the trial's running number (seed of its training, name of its checkpoint).
TRIAL_NUMBER_KEY = f"{BOOKKEEPING_PREFIX}trial"
#: File of a trial's checkpoint inside a Ray checkpoint folder.
CHECKPOINT_FILE = "trainer.pt"

_DATA_CACHE: dict[tuple, Any] = {}


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a search shares (the config holds the hyperparameters)."""

    data_dir: str
    subset: int | None
    val_size: int
    split_seed: int
    device: str
    max_epochs: int
    seed: int
    threads: int = 1
    precision: str = "auto"
    #: Epochs at which the policy may decide (None: any); each gets a checkpoint.
    checkpoint_epochs: frozenset[int] | None = None
    #: Longest training time between two checkpoints of a trial.
    checkpoint_seconds: float = 300.0

    def wants_checkpoint(self, epoch: int, seconds_since_checkpoint: float) -> bool:
        """Whether the report after ``epoch`` carries a checkpoint.

        Example:
            >>> settings = TrialSettings("data", None, 5000, 0, "cpu", max_epochs=8, seed=0,
            ...                          checkpoint_epochs=frozenset({4}))
            >>> [e for e in range(1, 9) if settings.wants_checkpoint(e, 1.0)]
            [4, 8]
        """
        return (
            epoch >= self.max_epochs
            or self.checkpoint_epochs is None
            or epoch in self.checkpoint_epochs
            or seconds_since_checkpoint >= self.checkpoint_seconds
        )


def trial_number(config: dict[str, Any], trial_id: str) -> int:
    """The trial's running number: the searcher's (``config["__qhpo_trial"]``) or one from its id."""
    if TRIAL_NUMBER_KEY in config:
        return int(config[TRIAL_NUMBER_KEY])
    return zlib.crc32(trial_id.encode())


def _load_data(settings: TrialSettings, device):
    from qhpo.workload import load_cifar10

    key = (settings.data_dir, settings.subset, settings.val_size, settings.split_seed, str(device))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one data set per worker process is enough
        _DATA_CACHE[key] = load_cifar10(
            settings.data_dir,
            subset=settings.subset,
            val_size=settings.val_size,
            split_seed=settings.split_seed,
            device=device,
        )
    return _DATA_CACHE[key]


def train_cifar_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Train one configuration to ``settings.max_epochs``, reporting after every epoch."""
    import torch

    from qhpo.runner import trial_seed
    from qhpo.workload import TrialTrainer, resolve_device, train_epochs

    torch.set_num_threads(max(1, settings.threads))
    device = resolve_device(settings.device)
    data = _load_data(settings, device)
    number = trial_number(config, tune.get_context().get_trial_id())
    trainer = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer = TrialTrainer.from_checkpoint(
                Path(folder) / CHECKPOINT_FILE, config, data, device=device, precision=settings.precision
            )
    if trainer is None:
        trainer = TrialTrainer(
            config, data, device=device, seed=trial_seed(settings.seed, number), precision=settings.precision
        )
    end = train_epochs(trainer, settings.max_epochs, _epoch_reporter(trainer, settings))
    if end.diverged is not None:
        tune.report({METRIC: math.nan, EPOCH_KEY: trainer.epoch + 1, DIVERGED_KEY: end.diverged})


def _epoch_reporter(trainer, settings: TrialSettings):
    """What the trial does after each epoch (``after_epoch`` of :func:`qhpo.workload.train_epochs`):
    report the epoch to Ray Tune, with the trainer's checkpoint when
    :meth:`TrialSettings.wants_checkpoint`; the scheduler, not the trial, stops it."""
    last_checkpoint = time.monotonic()

    def after_epoch(value: float, epoch: int, seconds: float) -> bool:
        nonlocal last_checkpoint
        metrics = {METRIC: value, EPOCH_KEY: epoch, "train_loss": trainer.train_loss, "epoch_seconds": seconds}
        if not settings.wants_checkpoint(epoch, time.monotonic() - last_checkpoint):
            tune.report(metrics)
            return False
        with tempfile.TemporaryDirectory(prefix="qhpo-trial-") as folder:
            trainer.save_checkpoint(Path(folder) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        last_checkpoint = time.monotonic()
        return False

    return after_epoch
