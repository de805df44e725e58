"""Device placement and CUDA behaviour. The tests marked ``gpu`` need a CUDA GPU and are
skipped without one (``bash benchmarks/gpu_check.sh`` runs them); the others check the same
rules on the CPU."""

from __future__ import annotations

import argparse

import pytest
import torch

from qhpo.workload import TrialTrainer, load_cifar10

SMALL = dict(num_layers=2, num_filters=16, batch_size=64, learning_rate=0.02, momentum=0.9)
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def small(cifar_dir):
    return load_cifar10(cifar_dir, subset=512, val_size=500)


def _run_args(*flags):
    from qhpo.cli._run import _add_arguments

    parser = argparse.ArgumentParser()
    _add_arguments(parser)
    return parser.parse_args(list(flags))


def test_trials_per_gpu_sets_the_workers_only_where_a_gpu_trains():
    from qhpo.cli._run import config_from_args
    from qhpo.runner import default_workers

    assert default_workers("cpu", 4) == 1
    assert default_workers("auto", 4) == (4 * max(1, torch.cuda.device_count()) if HAS_CUDA else 1)
    config = config_from_args(_run_args("--device", "cpu", "--trials-per-gpu", "3"))
    assert config.trials_per_gpu == 3 and config.workers == 1
    assert config_from_args(_run_args("--trials-per-gpu", "3", "--workers", "2")).workers == 2  # --workers wins
    assert config_from_args(_run_args()).trials_per_gpu == 1


def test_bad_trials_per_gpu_is_one_sentence(capsys):
    from qhpo.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["run", "--trials-per-gpu", "0"])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--trials-per-gpu" in err and "Traceback" not in err and len(err.splitlines()) == 1


# -- on a CUDA GPU --------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_checkpoint_written_on_the_gpu_restores_on_the_cpu_and_back(small, tmp_path):
    path = tmp_path / "gpu.pt"
    on_gpu = TrialTrainer(SMALL, small, device="cuda", seed=2)
    on_gpu.train_epoch()
    on_gpu.save_checkpoint(path)
    on_cpu = TrialTrainer.from_checkpoint(path, SMALL, small, device="cpu")
    assert on_cpu.epoch == 1 and on_cpu.curve == on_gpu.curve
    assert all(t.device.type == "cpu" for t in on_cpu.model.state_dict().values())
    for a, b in zip(on_gpu.model.state_dict().values(), on_cpu.model.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b)
    assert 0.0 <= on_cpu.train_epoch() <= 1.0
    on_cpu.save_checkpoint(path)
    back = TrialTrainer.from_checkpoint(path, SMALL, small, device="cuda")
    assert back.epoch == 2 and 0.0 <= back.train_epoch() <= 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_a_gpu_trainer_draws_the_cpu_trainers_batches_and_starts_from_its_weights(small):
    on_cpu, on_gpu = TrialTrainer(SMALL, small, seed=9), TrialTrainer(SMALL, small, device="cuda", seed=9)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu._epoch_draws(), on_gpu._epoch_draws(), strict=True))
    for a, b in zip(on_cpu.model.state_dict().values(), on_gpu.model.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu())


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_weight_initialisation_leaves_the_cuda_generators_alone(small):
    torch.cuda.manual_seed_all(21)
    expected = torch.rand(4, device="cuda")
    torch.cuda.manual_seed_all(21)
    TrialTrainer(SMALL, small, device="cuda", seed=3)
    assert torch.equal(torch.rand(4, device="cuda"), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_auto_precision_follows_this_gpus_compute_capability(small):
    major, minor = torch.cuda.get_device_capability(0)
    trainer = TrialTrainer(SMALL, small, device="cuda")
    assert trainer.arithmetic == ("bf16" if (major, minor) >= (8, 0) else "fp32")
    assert torch.backends.cudnn.benchmark is True
    accuracy = trainer.train_epoch()
    assert 0.0 <= accuracy <= 1.0 and trainer.train_loss == trainer.train_loss


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_two_workers_share_one_gpu(tmp_path, cifar_dir):
    from qhpo.cli import main

    storage = tmp_path / "q.db"
    code = main(
        [
            "run",
            "--quiet",
            "--storage",
            str(storage),
            "--study",
            "shared",
            "--data-dir",
            str(cifar_dir),
            "--trials",
            "2",
            "--epochs",
            "2",
            "--subset",
            "512",
            "--val-size",
            "500",
            "--device",
            "cuda",
            "--trials-per-gpu",
            "2",
            "--policy",
            "none",
        ]
    )
    assert code == 0
    import optuna

    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{storage}")
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2
    assert sorted(p.name for p in (tmp_path / "shared").glob("worker-*.log")) == ["worker-0.log", "worker-1.log"]


@pytest.fixture(scope="module")
def ray_with_one_gpu():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.gpu
@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("flags", [["--trials-per-gpu", "2"], ["--gpus-per-trial", "0.5", "--device", "cuda:0"]])
def test_ray_trials_train_on_a_share_of_the_gpu(ray_with_one_gpu, tmp_path, cifar_dir, flags):
    import optuna

    from qhpo.cli import main

    code = main(
        [
            "run",
            "--backend",
            "ray",
            "--quiet",
            "--storage",
            str(tmp_path / "q.db"),
            "--study",
            "ray-gpu",
            "--data-dir",
            str(cifar_dir),
            "--trials",
            "2",
            "--epochs",
            "2",
            "--subset",
            "512",
            "--val-size",
            "500",
            "--device",
            "cuda",
            "--policy",
            "none",
            *flags,
        ]
    )
    assert code == 0
    study = optuna.load_study(study_name="ray-gpu", storage=f"sqlite:///{tmp_path / 'q.db'}")
    # A trial that found no GPU (Ray hides the GPUs a trial did not reserve) fails in resolve_device.
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert 0.0 <= study.user_attrs["qhpo.test"]["accuracy"] <= 1.0
