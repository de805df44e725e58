"""`qhpo run --backend ray`: real CIFAR-10 trials through Ray Tune, and a killed driver resumed."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from qhpo.ray import _search as ray_search  # noqa: E402
from qhpo.ray import run_search  # noqa: E402
from qhpo.ray._search import RAY_TRIAL_ATTR, SCHEDULER_STATE_FILE  # noqa: E402
from qhpo.runner import RunConfig  # noqa: E402
from ray_snapshot import scheduler_snapshot  # noqa: E402

pytestmark = pytest.mark.ray

_TINY = dict(
    epochs=2, subset=256, val_size=256, device="cpu", policy="qhpo", predictor="svr", backend="ray", progress=False
)


def _study(path, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path}")


def _checkpoints(trial_folder: str) -> list[str]:
    return sorted(os.path.basename(c) for c in glob.glob(os.path.join(trial_folder, "checkpoint_*")))


def test_two_cifar_trials_complete_through_ray(local_ray, tmp_path, cifar_dir, monkeypatch):
    experiment = tmp_path / "two" / "ray"
    at_the_end: dict[str, list[str]] = {}
    drop = ray_search._drop_superseded_checkpoints

    def recording_drop(results):
        at_the_end.update({f: _checkpoints(f) for f in glob.glob(str(experiment / "train_cifar_trial_*"))})
        drop(results)

    monkeypatch.setattr(ray_search, "_drop_superseded_checkpoints", recording_drop)
    # both trials run to the end (two of two must complete before any is stopped)
    config = RunConfig(
        study="two", storage=str(tmp_path / "qhpo.db"), trials=2, data_dir=cifar_dir, min_completed=2, **_TINY
    )
    assert run_search(config) == 0
    study = _study(tmp_path / "qhpo.db", "two")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        assert sorted(trial.intermediate_values) == [1, 2]
        assert 0.0 <= trial.value <= 1.0 and trial.value == trial.intermediate_values[2]
        assert set(trial.params) == {"num_layers", "num_filters", "batch_size", "learning_rate", "momentum"}
        assert trial.user_attrs[RAY_TRIAL_ATTR]
    assert 0.0 <= study.user_attrs["qhpo.test"]["accuracy"] <= 1.0  # the best trial's checkpoint was tested
    assert (tmp_path / "two" / "two-curves.png").stat().st_size > 0
    assert (tmp_path / "two" / SCHEDULER_STATE_FILE).exists()
    # Ray kept every checkpoint while the search ran (each trial reported two: at its decision
    # epoch and at its last), so a killed driver's saved state never names a deleted one;
    # once the search ended each trial's folder holds its last one only.
    assert len(at_the_end) == 2
    assert all(names == ["checkpoint_000000", "checkpoint_000001"] for names in at_the_end.values()), at_the_end
    assert {f: _checkpoints(f) for f in at_the_end} == {f: ["checkpoint_000001"] for f in at_the_end}


def test_killed_driver_resumes_with_its_scheduler_state(local_ray, tmp_path, cifar_dir):
    args = [
        sys.executable,
        "-m",
        "qhpo",
        "run",
        "--backend",
        "ray",
        "--address",
        local_ray,
        "--quiet",
        "--study",
        "killed",
        "--storage",
        str(tmp_path / "qhpo.db"),
        "--data-dir",
        str(cifar_dir),
        "--trials",
        "3",
        "--epochs",
        "2",
        "--subset",
        "256",
        "--val-size",
        "256",
        "--device",
        "cpu",
        "--policy",
        "qhpo",
        "--predictor",
        "svr",
    ]
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    experiment = tmp_path / "killed" / "ray"
    driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    snapshot, deadline = None, time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        state = scheduler_snapshot(experiment)
        if state and any(t["status"] == "complete" for t in state["trials"]):
            snapshot = state
            break
        time.sleep(0.5)
    assert snapshot is not None, f"no trial completed before the deadline: {driver.stderr.read()[-2000:]!r}"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = {t["key"]: t for t in snapshot["trials"] if t["status"] == "complete"}

    resumed = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = _study(tmp_path / "qhpo.db", "killed")
    ray_ids = [t.user_attrs[RAY_TRIAL_ATTR] for t in study.get_trials()]
    assert len(ray_ids) == 3 and len(set(ray_ids)) == 3  # every trial once, none lost or doubled
    assert 0.0 <= study.user_attrs["qhpo.test"]["accuracy"] <= 1.0
    import json

    final = json.loads((tmp_path / "killed" / SCHEDULER_STATE_FILE).read_text())
    trials = {t["key"]: t for t in final["trials"]}
    assert set(trials) == set(ray_ids)
    for key, trial in before.items():  # finished before the kill, never re-run: known only from the restored state
        assert trials[key]["curve"] == trial["curve"] and trials[key]["status"] == "complete"
    assert all(len(t["curve"]) == 2 for t in trials.values())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--resume"], "no Ray experiment to resume"),
        (["--gpus-per-trial", "1", "--device", "auto"], "lower --gpus-per-trial"),
        (["--gpus-per-trial", "0.5"], "--device is cpu"),
        (["--gpus-per-trial", "2"], "between 0 and 1"),
        # Without a GPU torch can see (the local check) or on this GPU-less cluster: before any trial.
        (["--device", "cuda:0"], "--device cpu"),
        (["--device", "tpu"], "unknown device"),
        (["--policy", "median"], "runs with --backend optuna"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial must be positive"),
        (["--address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--policy-option", "bogus=1"], "rule 'qhpo' has no option 'bogus'"),
    ],
)
def test_user_errors_are_one_sentence(local_ray, tmp_path, cifar_dir, capsys, flags, message):
    from qhpo.cli import main

    code = main(
        [
            "run",
            "--backend",
            "ray",
            "--quiet",
            "--storage",
            str(tmp_path / "qhpo.db"),
            "--study",
            "errors",
            "--data-dir",
            str(cifar_dir),
            "--trials",
            "2",
            "--epochs",
            "2",
            "--device",
            "cpu",
            *flags,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_policy_options_reach_the_scheduler_and_its_decision_epochs():
    from qhpo.ray._search import _decision_epochs, _scheduler

    config = RunConfig(study="options", epochs=40, policy_options={"min_resource": 5, "reduction_factor": 3})
    scheduler = _scheduler(config)
    assert scheduler.stopping_policy.reduction_factor == 3
    assert _decision_epochs(config, scheduler).epochs == _decision_epochs(config, None).epochs == frozenset({5, 15})


def test_slurm_script_is_valid_bash():
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "docs" / "slurm" / "qhpo-ray.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "ray start --head" in text and "qhpo run --backend ray --address" in text and "--resume" in text
    steps = [line for line in text.splitlines() if line.lstrip().startswith("srun") and "hostname" not in line]
    assert len(steps) == 2 and all('--cpus-per-task="$cpus"' in line for line in steps)  # each Ray node's step
