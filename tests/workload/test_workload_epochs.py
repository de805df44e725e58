"""The one epoch loop of every backend (``qhpo.workload.train_epochs``) on real CIFAR-10 training."""

from __future__ import annotations

import math

import pytest
import torch

from qhpo.workload import TrainingEnd, TrialTrainer, load_cifar10, train_epochs

SMALL = dict(num_layers=2, num_filters=16, batch_size=64, learning_rate=0.02, momentum=0.9)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/workload/conftest.py


@pytest.fixture(scope="module")
def small(cifar_dir):
    return load_cifar10(cifar_dir, subset=256, val_size=250)


class Recorder:
    """``after_epoch`` that keeps what it was handed and stops after ``stop_at`` epochs."""

    def __init__(self, trainer: TrialTrainer, stop_at: int | None = None) -> None:
        self.trainer, self.stop_at, self.calls = trainer, stop_at, []

    def __call__(self, value: float, epoch: int, seconds: float) -> bool:
        self.calls.append((value, epoch, seconds, list(self.trainer.curve)))
        return epoch == self.stop_at


def test_the_loop_hands_every_epoch_over_and_stops_when_told(small):
    trainer = TrialTrainer(SMALL, small, seed=1)
    after = Recorder(trainer, stop_at=2)
    end = train_epochs(trainer, 4, after)
    assert end == TrainingEnd(trainer.curve[-1], stopped=True) and trainer.epoch == 2
    assert [epoch for _, epoch, _, _ in after.calls] == [1, 2]
    for value, epoch, seconds, curve in after.calls:
        assert value == curve[-1] and len(curve) == epoch and seconds > 0  # called after the epoch, with its time


def test_the_loop_ends_at_max_epochs_and_a_restored_trainer_goes_on_from_its_epoch(small, tmp_path):
    trainer = TrialTrainer(SMALL, small, seed=1)
    end = train_epochs(trainer, 1, Recorder(trainer))
    assert end == TrainingEnd(trainer.curve[0]) and trainer.epoch == 1
    trainer.save_checkpoint(tmp_path / "trial.pt")

    restored = TrialTrainer.from_checkpoint(tmp_path / "trial.pt", SMALL, small)
    after = Recorder(restored)
    end = train_epochs(restored, 2, after)
    assert [epoch for _, epoch, _, _ in after.calls] == [2] and not end.stopped and end.value == restored.curve[1]

    done = Recorder(restored)
    assert train_epochs(restored, 2, done) == TrainingEnd(restored.curve[-1]) and done.calls == []  # nothing left


def test_a_diverging_training_ends_the_loop_with_its_reason_and_no_report_of_that_epoch(small):
    trainer = TrialTrainer(SMALL, small)
    with torch.no_grad():
        trainer.model.classifier[-1].bias[0] = float("inf")
    after = Recorder(trainer)
    end = train_epochs(trainer, 3, after)
    assert end.diverged is not None and "by step 1 of epoch 1" in end.diverged
    assert math.isnan(end.value) and not end.stopped and after.calls == [] and trainer.epoch == 0
