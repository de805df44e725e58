"""``qhpo run`` end to end: real CIFAR-10 subsets, real training on the CPU, real SQLite files."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from qhpo.cli import main
from qhpo.optuna import DECISIONS_ATTR, STOP_ATTR, checkpoint_key, configuration_counts
from qhpo.runner._storage import FAILURE_ATTR, RETRY_OF_ATTR
from qhpo.runner._summary import TEST_ATTR
from qhpo.runner._trial import RESUMED_AT_ATTR
from run_killer import kill_run_during

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def tiny_run(cifar_dir, storage, *extra, study="tiny"):
    """A run small enough for a test: 256 training images, 250 validation images, 3 epochs."""
    return [
        "run",
        "--data-dir",
        str(cifar_dir),
        "--subset",
        "256",
        "--val-size",
        "250",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--storage",
        str(storage),
        "--study",
        study,
        "--predictor",
        "svr",
        "--hpo-sampler",
        "random",
        *extra,
    ]


def load(storage, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")


def curve(trial):
    return [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]


@pytest.mark.slow
def test_run_completes_on_cpu_and_stores_curves_decisions_and_plots(tmp_path, cifar_dir, capsys):
    storage = tmp_path / "runs" / "q.db"
    args = tiny_run(cifar_dir, storage, "--trials", "5", "--min-completed", "2")
    assert main(args) == 0
    out = capsys.readouterr()
    assert "best trials" in out.out and "epochs:" in out.out and "test accuracy" in out.out

    study = load(storage)
    finished = [t for t in study.trials if t.state in FINISHED]
    assert configuration_counts(study.trials) == (5, 0)  # a paused and resumed configuration counts once
    for trial in finished:
        assert sorted(trial.intermediate_values) == list(range(1, len(trial.intermediate_values) + 1))
        assert all(0.0 <= v <= 1.0 for v in curve(trial))
        if trial.state == TrialState.COMPLETE:
            assert len(curve(trial)) == 3 and trial.value == curve(trial)[-1]
        else:
            assert trial.user_attrs[STOP_ATTR]["epoch"] == len(curve(trial)) < 3
    # No stop before the first 2 trials complete; later trials carry decision records, each with the
    # cut-off it was compared with and, when it read one, the prediction; or, at a rung that fewer
    # than its quorum of 4 trials had reached, the pause that waits for them (no cut-off yet).
    records = [r for t in study.trials for r in t.user_attrs.get(DECISIONS_ATTR, [])]
    waits = [r for r in records if "trials that rung" in r["reason"] and "waits for" in r["reason"]]
    assert all(r["decision"] == "pause" and r["threshold"] is None for r in waits)
    assert records and all((r["threshold"] is not None or r in waits) and r["reason"] for r in records)
    assert all(r["predicted_final"] is None or r["std"] >= 0 for r in records)
    assert all(DECISIONS_ATTR not in t.user_attrs for t in study.trials[:2])

    test = study.user_attrs[TEST_ATTR]
    assert test["trial"] == study.best_trial.number and 0.0 <= test["accuracy"] <= 1.0 and test["images"] == 10000
    folder = storage.parent / "tiny"
    curves_png, epochs_png = folder / "tiny-curves.png", folder / "tiny-epochs.png"
    assert curves_png.stat().st_size > 10_000 and epochs_png.stat().st_size > 5_000
    # only the best configuration's checkpoint is kept, named by its key (a resumption's is the paused trial's)
    assert [p.name for p in (folder / "checkpoints").glob("*.pt")] == [f"trial-{checkpoint_key(study.best_trial)}.pt"]

    # The same command again trains nothing and counts nothing twice.
    assert main(args) == 0
    assert [(t.number, t.state, curve(t)) for t in load(storage).trials] == [
        (t.number, t.state, curve(t)) for t in study.trials
    ]
    assert load(storage).user_attrs[TEST_ATTR] == test  # the test set is not read again
    capsys.readouterr()

    # Resuming with settings that change results is refused in one sentence.
    assert main(tiny_run(cifar_dir, storage, "--trials", "5", "--epochs", "4")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "created with epochs = 3" in err

    # qhpo report redraws the plots from the storage alone.
    curves_png.unlink()
    epochs_png.unlink()
    assert main(["report", "--storage", str(storage), "--study", "tiny"]) == 0
    assert curves_png.exists() and epochs_png.exists()
    assert "best trials" in capsys.readouterr().out


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_resumes_without_losing_or_duplicating(tmp_path, cifar_dir):
    storage = tmp_path / "q.db"
    args = tiny_run(cifar_dir, storage, "--trials", "5", "--policy", "none")
    args[args.index("--subset") + 1] = "512"  # epochs long enough to be caught mid-trial

    def choose(trials):
        done = [t for t in trials if t.state in FINISHED]
        running = [t for t in trials if t.state == TrialState.RUNNING and len(t.intermediate_values) >= 1]
        return running[0].number if done and running else None

    victim, stderr = kill_run_during(args, storage, lambda s: load(s).trials, choose, deadline=240, poll=0.05)
    assert victim is not None, f"the run ended before it could be killed: {stderr}"

    before = load(storage).trials
    kept = {t.number: (t.state, curve(t)) for t in before if t.state in FINISHED}
    interrupted = before[victim]
    assert interrupted.state == TrialState.RUNNING

    assert main(args + ["--quiet"]) == 0

    study = load(storage)
    finished = [t for t in study.trials if t.state in FINISHED]
    assert len(finished) == 5
    for number, (state, values) in kept.items():  # completed trials are kept as they were
        assert (study.trials[number].state, curve(study.trials[number])) == (state, values)
    failed = study.trials[victim]
    assert failed.state == TrialState.FAIL and failed.user_attrs[FAILURE_ATTR].startswith("interrupted")
    retries = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == victim]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state in FINISHED and retry.params == interrupted.params
    # The retry continued from the checkpoint: the epochs before the kill are the same values.
    resumed = retry.user_attrs[RESUMED_AT_ATTR]
    assert 1 <= resumed <= len(curve(interrupted)) + 1
    assert curve(retry)[: min(resumed, len(curve(interrupted)))] == curve(interrupted)[:resumed]
    assert len(curve(retry)) == 3  # policy none: every trial runs to the end


@pytest.mark.slow
def test_diverging_trial_is_recorded_failed_and_the_study_completes(tmp_path, cifar_dir, capsys):
    space = tmp_path / "space.toml"
    space.write_text(
        "[parameters.num_layers]\nvalue = 2\n[parameters.num_filters]\nvalue = 16\n"
        "[parameters.batch_size]\nvalue = 64\n[parameters.momentum]\nvalue = 0.0\n"
        "[parameters.learning_rate]\nchoices = [1e4, 0.01]\n"
    )
    storage = tmp_path / "q.db"
    # The random sampler with seed 0 draws the diverging learning rate first.
    assert (
        main(
            tiny_run(
                cifar_dir,
                storage,
                "--trials",
                "2",
                "--epochs",
                "2",
                "--space",
                str(space),
                "--policy",
                "none",
                "--seed",
                "0",
            )
        )
        == 0
    )
    study = load(storage)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["learning_rate"] == 1e4 for t in failed)
    assert all(t.user_attrs[FAILURE_ATTR].startswith("diverged: training loss became nan") for t in failed)
    assert sum(t.state in FINISHED for t in study.trials) == 2
    assert all(t.params["learning_rate"] == 0.01 for t in study.trials if t.state in FINISHED)
    assert "failed" in capsys.readouterr().out


@pytest.mark.slow
def test_two_worker_processes_on_a_journal_file(tmp_path, cifar_dir, capsys):
    journal = tmp_path / "runs" / "study.log"
    args = tiny_run(cifar_dir, "x", "--trials", "4", "--epochs", "2", "--workers", "2", "--policy", "none")
    args[args.index("--storage") + 1] = f"journal:{journal}"
    assert main(args) == 0
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(
        study_name="tiny", storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    )
    finished = [t for t in study.trials if t.state in FINISHED]
    assert len(finished) == 4  # exactly: the two workers claim places under one lock
    assert len({t.user_attrs["qhpo.owner"]["pid"] for t in finished}) == 2
    assert len({tuple(sorted(t.params.items())) for t in finished}) == len(finished)  # no configuration twice
    assert all(len(t.intermediate_values) == 2 for t in finished)
    assert (journal.parent / "tiny" / "tiny-curves.png").exists()


def one_sentence(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda tmp, args: args + ["--data-dir", str(tmp / "nowhere")], "CIFAR-10 was not found"),
        (lambda tmp, args: args + ["--policy", "sometimes"], "unknown policy 'sometimes'"),
        (lambda tmp, args: args + ["--annealer", "quantum-magic"], "unknown annealer 'quantum-magic'"),
        (lambda tmp, args: args + ["--predictor", "gp"], "unknown predictor 'gp'"),
        (lambda tmp, args: args + ["--predictor", "oracle"], "reads the recorded curves of a replay"),
        (lambda tmp, args: args + ["--trials", "-3"], "positive whole number"),
        (lambda tmp, args: args + ["--device", "tpu"], "unknown device 'tpu'"),
        (lambda tmp, args: args + ["--val-size", "50000"], "--val-size must leave training images"),
        (lambda tmp, args: args + ["--split-seed", "-1"], "--split-seed must be a whole number from 0"),
        (lambda tmp, args: args + ["--seed", "-1"], "--seed must be a whole number from 0"),
        (lambda tmp, args: args + ["--seed", str(2**32)], "--seed must be a whole number from 0 to 4294967295"),
    ],
)
def test_user_errors_give_one_sentence_and_status_2(tmp_path, cifar_dir, capsys, change, message):
    args = change(tmp_path, tiny_run(cifar_dir, tmp_path / "q.db", "--trials", "2"))
    try:
        status = main(args)
    except SystemExit as exit_:  # a malformed flag ends in argparse
        status = exit_.code
    assert status == 2
    assert message in one_sentence(capsys)
    assert not (tmp_path / "q.db").exists() or not load(tmp_path / "q.db").trials


def test_bad_toml_space_gives_one_sentence(tmp_path, cifar_dir, capsys):
    space = tmp_path / "space.toml"
    space.write_text("[parameters.num_layers\nchoices = [2, 3]\n")
    assert main(tiny_run(cifar_dir, tmp_path / "q.db", "--space", str(space))) == 2
    assert "is not valid TOML" in one_sentence(capsys)
    space.write_text("[parameters.num_layers]\nchoices = [2, 3]\n")
    assert main(tiny_run(cifar_dir, tmp_path / "q.db", "--space", str(space))) == 2
    assert "lacks parameter(s)" in one_sentence(capsys)


def test_dwave_annealer_without_token_gives_one_sentence(tmp_path, cifar_dir, capsys, monkeypatch):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(tmp_path / "absent.conf"))
    assert main(tiny_run(cifar_dir, tmp_path / "q.db", "--predictor", "qsvr", "--annealer", "dwave")) == 2
    assert "D-Wave" in one_sentence(capsys)


@pytest.mark.slow
def test_bf16_precision_trains_other_numbers_than_float32(tmp_path, cifar_dir):
    space = tmp_path / "space.toml"  # one configuration that learns, so the curves carry signal
    space.write_text(
        "[parameters.num_layers]\nvalue = 2\n[parameters.num_filters]\nvalue = 16\n"
        "[parameters.batch_size]\nvalue = 64\n[parameters.learning_rate]\nvalue = 0.05\n"
        "[parameters.momentum]\nvalue = 0.9\n"
    )
    curves = {}
    for precision in ("fp32", "bf16"):
        storage = tmp_path / precision / "q.db"
        args = tiny_run(
            cifar_dir,
            storage,
            "--trials",
            "1",
            "--policy",
            "none",
            "--epochs",
            "2",
            "--space",
            str(space),
            "--precision",
            precision,
            "--quiet",
        )
        args[args.index("--subset") + 1] = "1024"
        assert main(args) == 0
        (trial,) = load(storage).trials
        assert trial.state == TrialState.COMPLETE
        curves[precision] = curve(trial)
    assert all(0.0 <= v <= 1.0 for v in curves["bf16"])
    # Same configuration and seed: only the arithmetic differs, so the curves do too.
    assert curves["bf16"] != curves["fp32"]


@pytest.mark.slow
def test_console_run_restarts_with_malloc_settings_and_keeps_its_arguments(tmp_path):
    # Without GLIBC_TUNABLES the command re-executes itself once with them; arguments and
    # the one-sentence error must come through unchanged.
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    missing = tmp_path / "no-data"
    result = subprocess.run(
        [sys.executable, "-m", "qhpo", "run", "--data-dir", str(missing), "--storage", str(tmp_path / "q.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "--download" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("safe_path", [False, True])
def test_processes_qhpo_starts_do_not_import_modules_of_the_current_folder(tmp_path, safe_path):
    # A torch.py in the folder the user runs from: the re-executed command (and the workers,
    # started the same way) must import the real torch, never this file.
    witness = tmp_path / "imported"
    (tmp_path / "torch.py").write_text(f"open({str(witness)!r}, 'w').close()\nraise ImportError('local torch.py')\n")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and "site-packages" not in p)
    if safe_path:
        env["PYTHONSAFEPATH"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "qhpo",
            "run",
            "--data-dir",
            str(tmp_path / "none"),
            "--storage",
            str(tmp_path / "q.db"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "CIFAR-10 was not found" in result.stderr, result.stderr
    assert not witness.exists()
    from qhpo._environment import module_command

    result = subprocess.run(
        module_command("qhpo.workload._device"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert not witness.exists()


@pytest.fixture
def read_only():
    """Makes a file or folder unwritable even for root (immutable), undone after the test."""
    made = []

    def make(path):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("where", ["sqlite-file", "storage-folder", "journal-folder", "run-dir"])
def test_unwritable_storage_or_run_folder_gives_one_sentence_and_writes_nothing(
    tmp_path, cifar_dir, capsys, read_only, where
):
    folder = tmp_path / "locked"
    folder.mkdir()
    storage, extra = tmp_path / "q.db", []
    if where == "sqlite-file":
        storage = folder / "q.db"
        optuna.create_study(study_name="other", storage=f"sqlite:///{storage}")
        read_only(storage)
    elif where == "storage-folder":
        storage = folder / "q.db"
        read_only(folder)
    elif where == "journal-folder":
        storage = f"journal:{folder / 'q.log'}"
        read_only(folder)
    else:
        extra = ["--run-dir", str(folder / "runs")]
        read_only(folder)
    args = tiny_run(cifar_dir, storage, "--trials", "2", *extra)
    assert main(args) == 2
    message = one_sentence(capsys)
    assert ("read-only" in message or "cannot write in the folder" in message) and str(folder) in message
    if where == "sqlite-file":
        assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{storage}")] == ["other"]
    elif where == "run-dir":
        assert not storage.exists()
    else:
        assert sorted(p.name for p in folder.iterdir()) == []


def test_bad_settings_are_refused_before_the_study_exists_so_the_corrected_run_starts(tmp_path, cifar_dir, capsys):
    storage = tmp_path / "q.db"
    assert main(tiny_run(cifar_dir, storage, "--trials", "1", "--split-seed", "-5")) == 2
    one_sentence(capsys)
    assert not storage.exists() or not optuna.get_all_study_summaries(f"sqlite:///{storage}")


@pytest.mark.slow
def test_full_disk_stops_the_run_keeps_the_trial_and_a_corrupt_best_checkpoint_skips_only_the_test(
    tmp_path, cifar_dir, capsys
):
    storage = tmp_path / "q.db"
    args = tiny_run(cifar_dir, storage, "--trials", "1", "--epochs", "2", "--policy", "none")
    checkpoints = tmp_path / "tiny" / "checkpoints"
    checkpoints.mkdir(parents=True)
    # The checkpoint's scratch file leads to /dev/full: writing it fails with ENOSPC, as on a full disk.
    scratch = checkpoints / f".trial-0.pt.{os.getpid()}.tmp"
    scratch.symlink_to("/dev/full")
    assert main(args) == 2
    message = one_sentence(capsys)
    assert "is full" in message and "run the same command again" in message
    study = load(storage)
    assert study.trials[0].state == TrialState.FAIL and "disk was full" in study.trials[0].user_attrs[FAILURE_ATTR]
    assert [t.user_attrs[RETRY_OF_ATTR] for t in study.trials if t.state == TrialState.WAITING] == [0]

    assert main(args) == 0  # space again: the retry trains the configuration to the end
    study = load(storage)
    (retry,) = [t for t in study.trials if t.state in FINISHED]
    assert retry.user_attrs[RETRY_OF_ATTR] == 0 and len(curve(retry)) == 2
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".tmp")]

    # A damaged best checkpoint: the report and the plots come all the same.
    (checkpoint,) = checkpoints.glob("trial-*.pt")
    checkpoint.write_bytes(b"damaged")
    study.set_user_attr(TEST_ATTR, None)
    for png in (tmp_path / "tiny").glob("*.png"):
        png.unlink()
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr()
    assert "best trials" in out.out and "was not tested" in out.err
    assert len(list((tmp_path / "tiny").glob("*.png"))) == 2


def test_orphaned_temporary_files_are_removed_on_the_next_start(tmp_path, cifar_dir):
    from qhpo.runner._search import remove_orphan_files

    dead = subprocess.Popen(["true"])
    dead.wait()
    study_dir = tmp_path / "tiny"
    (study_dir / "checkpoints").mkdir(parents=True)
    orphans = [study_dir / "checkpoints" / f".trial-3.pt.{dead.pid}.tmp", study_dir / f".workers-{dead.pid}-k2.json"]
    live = study_dir / "checkpoints" / f".trial-4.pt.{os.getpid()}.tmp"
    for path in (*orphans, live):
        path.write_bytes(b"x")
    assert sorted(remove_orphan_files(study_dir)) == sorted(orphans)
    assert live.exists() and not any(p.exists() for p in orphans)


def test_a_hostile_cifar_batch_stops_qhpo_run_before_anything_is_written(tmp_path, cifar_dir, capsys):
    import pickle

    class RunsCommand:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'executed'}",))

    batches = tmp_path / "data" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for real in (cifar_dir / "cifar-10-batches-py").iterdir():
        (batches / real.name).symlink_to(real)
    (batches / "data_batch_2").unlink()
    (batches / "data_batch_2").write_bytes(pickle.dumps({"data": RunsCommand(), "labels": [0]}))
    args = tiny_run(tmp_path / "data", tmp_path / "q.db", "--trials", "1")
    assert main(args) == 2
    message = one_sentence(capsys)
    assert "data_batch_2 is not a readable CIFAR-10 batch" in message and "system" in message
    assert not (tmp_path / "executed").exists()
    assert not (tmp_path / "q.db").exists() or not optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'q.db'}")
