"""Freeze-thaw in ``qhpo run``: real CIFAR-10 subsets, real training on the CPU, the real ``qhpo``
policy on a real SQLite file. A trial the policy pauses ends PRUNED with its checkpoint
kept; a later trial resumes it from that checkpoint, so the configuration's curve goes on
across the pause exactly as uninterrupted training would have gone."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from qhpo.cli import main
from qhpo.optuna import PAUSED_ATTR, RESUME_ATTR, RESUME_OF_ATTR, STOP_ATTR, configuration_counts
from qhpo.runner._storage import FAILURE_ATTR, RETRY_OF_ATTR
from qhpo.runner._trial import RESUMED_AT_ATTR, trial_seed
from run_killer import kill_run_during, sqlite_trials

SUBSET, VAL_SIZE, EPOCHS, TRIALS = 512, 250, 2, 8
# Two learning rates and two momenta of one small CNN: some configurations learn in the first
# epoch, others stay at chance, so the policy's ranking at its one rung (epoch 1, observed
# values only: no predictor, no thread timing) pauses some trials early and, once enough
# slower trials have arrived, resumes the better ones. With seed 0 trial 4 is paused at
# epoch 1 and resumed by trial 6.
SPACE = """
[parameters.num_layers]
value = 2
[parameters.num_filters]
value = 16
[parameters.batch_size]
value = 64
[parameters.learning_rate]
choices = [0.05, 0.02, 0.0001]
[parameters.momentum]
choices = [0.9, 0.5]
"""


def freeze_thaw_run(cifar_dir, storage, space, *extra):
    return [
        "run",
        "--data-dir",
        str(cifar_dir),
        "--subset",
        str(SUBSET),
        "--val-size",
        str(VAL_SIZE),
        "--epochs",
        str(EPOCHS),
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--storage",
        str(storage),
        "--study",
        "thaw",
        "--policy",
        "qhpo",
        "--predictor",
        "svr",
        "--hpo-sampler",
        "random",
        "--min-completed",
        "2",
        "--space",
        str(space),
        "--seed",
        "0",
        *extra,
    ]


def load(storage):
    return optuna.load_study(study_name="thaw", storage=f"sqlite:///{storage}")


def curve(trial):
    return [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]


def uninterrupted_curve(cifar_dir, trial, epochs):
    """The curve the configuration of ``trial`` trains without a pause (same data, seed and arithmetic)."""
    from qhpo.workload import TrialTrainer, load_cifar10

    data = load_cifar10(cifar_dir, subset=SUBSET, val_size=VAL_SIZE, split_seed=0)
    config = {"num_layers": 2, "num_filters": 16, "batch_size": 64, **trial.params}
    trainer = TrialTrainer(config, data, seed=trial_seed(0, trial.user_attrs["qhpo.checkpoint"]), precision="fp32")
    return [trainer.train_epoch() for _ in range(epochs)]


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


@pytest.mark.slow
def test_a_paused_trial_is_resumed_from_its_checkpoint_and_its_curve_goes_on(tmp_path, cifar_dir, space, capsys):
    storage = tmp_path / "q.db"
    args = freeze_thaw_run(cifar_dir, storage, space, "--trials", str(TRIALS))
    assert main(args + ["--keep-checkpoints"]) == 0
    out = capsys.readouterr().out
    study = load(storage)
    trials = study.trials

    # --trials counts configurations: a paused and resumed one once.
    assert configuration_counts(trials) == (TRIALS, 0)
    resumptions = [t for t in trials if t.user_attrs.get(RESUME_OF_ATTR) is not None]
    assert resumptions, "no trial was resumed: the policy's ranking changed (see SPACE)"
    assert len(trials) == TRIALS + len(resumptions)
    for resumption in resumptions:
        paused = trials[resumption.user_attrs[RESUME_OF_ATTR]]
        record = paused.user_attrs[PAUSED_ATTR]
        r = record["epoch"]
        # The pause: PRUNED with its verdict record, the checkpoint shared with its resumption.
        assert paused.state == TrialState.PRUNED and record["decision"] == "pause"
        assert paused.user_attrs[STOP_ATTR] == record and len(curve(paused)) == r < EPOCHS
        assert resumption.params == paused.params
        assert resumption.user_attrs["qhpo.checkpoint"] == paused.user_attrs["qhpo.checkpoint"]
        assert (
            resumption.user_attrs[RESUME_ATTR]["decision"] == "resume"
            and resumption.user_attrs[RESUME_ATTR]["epoch"] == r
        )
        # The resumption started from the checkpoint's epoch, reported epochs 1..r as they were
        # before the pause, and trained on to the end.
        assert resumption.user_attrs[RESUMED_AT_ATTR] == r
        assert resumption.state == TrialState.COMPLETE and len(curve(resumption)) == EPOCHS
        assert curve(resumption)[:r] == curve(paused)
        # Continuous across the pause: bit for bit the curve of uninterrupted training.
        assert curve(resumption) == uninterrupted_curve(cifar_dir, resumption, EPOCHS)
    # Paused trials never resumed are counted as pruned; their checkpoints are kept by the flag.
    left = [
        t
        for t in trials
        if PAUSED_ATTR in t.user_attrs and t.number not in {r.user_attrs[RESUME_OF_ATTR] for r in resumptions}
    ]
    folder = tmp_path / "thaw" / "checkpoints"
    kept = {p.name for p in folder.glob("trial-*.pt")}
    assert {f"trial-{t.user_attrs['qhpo.checkpoint']}.pt" for t in left} <= kept
    assert f"trial-{study.best_trial.user_attrs['qhpo.checkpoint']}.pt" in kept
    # The summary says what was paused and resumed.
    first = resumptions[0]
    assert f"paused after epoch 1, resumed as trial {first.number}: complete after {EPOCHS} epochs" in out
    assert f"trial {first.user_attrs[RESUME_OF_ATTR]} paused after epoch 1" in out

    # qhpo report shows them from the storage alone, and redraws the plots.
    for png in (tmp_path / "thaw").glob("*.png"):
        png.unlink()
    assert main(["report", "--storage", str(storage), "--study", "thaw"]) == 0
    report = capsys.readouterr().out
    assert f"resumed as trial {first.number}" in report and "pauses:" in report
    assert len(list((tmp_path / "thaw").glob("*.png"))) == 2

    # One more configuration without the flag: when the search ends only the best checkpoint is left.
    assert main(freeze_thaw_run(cifar_dir, storage, space, "--trials", str(TRIALS + 1), "--quiet")) == 0
    study = load(storage)
    assert configuration_counts(study.trials) == (TRIALS + 1, 0)
    assert [p.name for p in folder.glob("trial-*.pt")] == [f"trial-{study.best_trial.user_attrs['qhpo.checkpoint']}.pt"]


@pytest.mark.slow
def test_sigkill_during_a_resumption_loses_nothing(tmp_path, cifar_dir, space):
    storage = tmp_path / "q.db"
    args = freeze_thaw_run(cifar_dir, storage, space, "--trials", str(TRIALS))

    def choose(trials):
        running = [t for t in trials if t.state == TrialState.RUNNING and RESUME_OF_ATTR in t.user_attrs]
        return running[0].number if running else None

    # A resumption trains one epoch of 512 images: polled straight from the SQLite file
    victim, stderr = kill_run_during(args, storage, sqlite_trials, choose, deadline=400, poll=0.01)
    assert victim is not None, f"no resumption ran before the run ended: {stderr}"

    before = load(storage).trials
    kept = {t.number: (t.state, curve(t)) for t in before if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    paused_number = before[victim].user_attrs[RESUME_OF_ATTR]
    assert (
        tmp_path / "thaw" / "checkpoints" / f"trial-{before[paused_number].user_attrs['qhpo.checkpoint']}.pt"
    ).exists()

    assert main(args + ["--quiet"]) == 0

    study = load(storage)
    trials = study.trials
    assert configuration_counts(trials) == (TRIALS, 0)  # exactly N configurations, none counted twice
    for number, (state, values) in kept.items():  # finished trials are kept as they were
        assert (trials[number].state, curve(trials[number])) == (state, values)
    killed = trials[victim]
    assert killed.state == TrialState.FAIL and killed.user_attrs[FAILURE_ATTR].startswith("interrupted")
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == victim]
    # The retry resumes the same paused trial from the shared checkpoint and finishes it.
    assert retry.user_attrs[RESUME_OF_ATTR] == paused_number and retry.params == trials[paused_number].params
    assert retry.state == TrialState.COMPLETE and len(curve(retry)) == EPOCHS
    paused = trials[paused_number]
    assert curve(retry)[: len(curve(paused))] == curve(paused)
    assert curve(retry) == uninterrupted_curve(cifar_dir, retry, EPOCHS)
    # The paused trial is resumed by the retry alone: no second resumption of it.
    live = [t for t in trials if t.user_attrs.get(RESUME_OF_ATTR) == paused_number and t.state != TrialState.FAIL]
    assert live == [retry]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
