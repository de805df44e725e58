"""What a Ray trial reserves and when it checkpoints: pure rules, checked without starting Ray."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from qhpo import QhpoError  # noqa: E402
from qhpo.ray._search import trial_resources  # noqa: E402
from qhpo.ray._trainable import TrialSettings  # noqa: E402
from qhpo.runner import RunConfig  # noqa: E402


def _config(**changes):
    return RunConfig(study="s", backend="ray", **changes)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3", "CUDA:1", "auto"])
def test_every_gpu_device_reserves_a_gpu_per_trial_by_default(device):
    assert trial_resources(_config(device=device), cluster_gpus=4) == ({"cpu": 1.0, "gpu": 1.0}, "cuda")


@pytest.mark.parametrize("per_gpu, share", [(1, 1.0), (2, 0.5), (4, 0.25)])
def test_trials_per_gpu_sets_the_share_of_a_gpu(per_gpu, share):
    for device in ("cuda", "cuda:1", "auto"):
        resources, kind = trial_resources(_config(device=device, trials_per_gpu=per_gpu), cluster_gpus=1)
        assert resources["gpu"] == share and kind == "cuda"


def test_cpu_trials_reserve_no_gpu():
    assert trial_resources(_config(device="auto"), cluster_gpus=0) == ({"cpu": 1.0, "gpu": 0.0}, "cpu")
    assert trial_resources(_config(device="cpu"), cluster_gpus=8) == ({"cpu": 1.0, "gpu": 0.0}, "cpu")
    assert trial_resources(_config(device="cpu", trials_per_gpu=4), cluster_gpus=8)[0]["gpu"] == 0.0
    assert trial_resources(_config(device="auto", gpus_per_trial=0), cluster_gpus=8) == (
        {"cpu": 1.0, "gpu": 0.0},
        "cpu",
    )
    assert trial_resources(_config(device="cuda", gpus_per_trial=0.25, cpus_per_trial=4), cluster_gpus=1) == (
        {"cpu": 4.0, "gpu": 0.25},
        "cuda",
    )


@pytest.mark.parametrize(
    "changes, cluster_gpus, message",
    [
        (dict(device="cuda", gpus_per_trial=2), 8, "between 0 and 1"),
        (dict(device="cuda", gpus_per_trial=1.5), 8, "between 0 and 1"),
        (dict(device="cuda", gpus_per_trial=-1), 8, "between 0 and 1"),
        (dict(device="cuda", gpus_per_trial=0), 8, "would train on the CPU"),
        (dict(device="cuda:2", gpus_per_trial=0), 8, "would train on the CPU"),
        (dict(device="cpu", gpus_per_trial=0.5), 8, "--device is cpu"),
        (dict(device="cuda", gpus_per_trial=0.5, trials_per_gpu=2), 8, "pass only one of them"),
        (dict(device="cuda"), 0, "the Ray cluster has 0"),
        (dict(device="cuda:1"), 0, "the Ray cluster has 0"),
        (dict(device="auto", gpus_per_trial=1), 0, "lower --gpus-per-trial"),
        (dict(device="cuda", cpus_per_trial=0), 8, "--cpus-per-trial must be positive"),
        (dict(device="cuda", trials_per_gpu=0), 8, "--trials-per-gpu must be a positive"),
    ],
)
def test_contradicting_resources_are_one_sentence(changes, cluster_gpus, message):
    with pytest.raises(QhpoError, match=message) as caught:
        trial_resources(_config(**changes), cluster_gpus=cluster_gpus)
    assert "\n" not in str(caught.value)


def test_checkpoints_at_decision_epochs_the_last_epoch_and_after_the_interval():
    settings = TrialSettings(
        "data",
        None,
        5000,
        0,
        "cpu",
        max_epochs=10,
        seed=0,
        checkpoint_epochs=frozenset({3, 6}),
        checkpoint_seconds=60.0,
    )
    assert [e for e in range(1, 11) if settings.wants_checkpoint(e, 5.0)] == [3, 6, 10]
    assert settings.wants_checkpoint(4, 60.0) and not settings.wants_checkpoint(4, 59.9)
    every = TrialSettings("data", None, 5000, 0, "cpu", max_epochs=4, seed=0, checkpoint_epochs=None)
    assert [e for e in range(1, 5) if every.wants_checkpoint(e, 0.0)] == [1, 2, 3, 4]
    none = TrialSettings("data", None, 5000, 0, "cpu", max_epochs=4, seed=0, checkpoint_epochs=frozenset())
    assert [e for e in range(1, 5) if none.wants_checkpoint(e, 0.0)] == [4]


def test_a_crashed_ray_trial_is_recorded_with_where_its_error_is():
    from types import SimpleNamespace

    from ray.tune.experiment import Trial

    from qhpo.ray._recorder import _error_of

    # Ray Tune's Trial has error_file (None until the trial fails), not error_msg
    assert isinstance(Trial.error_file, property) and not hasattr(Trial, "error_msg")
    assert _error_of(SimpleNamespace(error_file="/runs/exp/trial_1/error.txt")) == (
        "its error is in /runs/exp/trial_1/error.txt"
    )
    assert _error_of(SimpleNamespace(error_file=None)) == "see the Ray logs"
    assert _error_of(SimpleNamespace()) == "see the Ray logs"
