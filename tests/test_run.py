"""``qhpo run`` end to end: real CIFAR-10 subsets, real training on the CPU, real SQLite files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from qhpo.cli import main
from qhpo.optuna import DECISIONS_ATTR, STOP_ATTR
from qhpo.runner._storage import FAILURE_ATTR, RETRY_OF_ATTR
from qhpo.runner._summary import TEST_ATTR
from qhpo.runner._trial import RESUMED_AT_ATTR

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
GLIBC = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"


def tiny_run(cifar_dir, storage, *extra):
    """A run small enough for a test: 256 training images, 250 validation images, 3 epochs."""
    return ["run", "--data-dir", str(cifar_dir), "--subset", "256", "--val-size", "250", "--epochs", "3",
            "--device", "cpu", "--storage", str(storage), "--study", "tiny", "--predictor", "svr",
            "--hpo-sampler", "random", *extra]


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
    assert len(finished) == 5
    for trial in finished:
        assert sorted(trial.intermediate_values) == list(range(1, len(trial.intermediate_values) + 1))
        assert all(0.0 <= v <= 1.0 for v in curve(trial))
        if trial.state == TrialState.COMPLETE:
            assert len(curve(trial)) == 3 and trial.value == curve(trial)[-1]
        else:
            assert trial.user_attrs[STOP_ATTR]["epoch"] == len(curve(trial)) < 3
    # The predictor fits after the first 2 complete trials; later trials carry decision records.
    records = [r for t in study.trials for r in t.user_attrs.get(DECISIONS_ATTR, [])]
    assert records and all(r["predicted_final"] is not None and r["std"] >= 0 for r in records)
    assert all(DECISIONS_ATTR not in t.user_attrs for t in study.trials[:2])

    test = study.user_attrs[TEST_ATTR]
    assert test["trial"] == study.best_trial.number and 0.0 <= test["accuracy"] <= 1.0 and test["images"] == 10000
    folder = storage.parent / "tiny"
    curves_png, epochs_png = folder / "tiny-curves.png", folder / "tiny-epochs.png"
    assert curves_png.stat().st_size > 10_000 and epochs_png.stat().st_size > 5_000
    assert [p.name for p in (folder / "checkpoints").glob("*.pt")] == [f"trial-{study.best_trial.number}.pt"]

    # The same command again trains nothing and counts nothing twice.
    assert main(args) == 0
    assert [(t.number, t.state, curve(t)) for t in load(storage).trials] == [(t.number, t.state, curve(t)) for t in study.trials]
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
    env = {**os.environ, "GLIBC_TUNABLES": GLIBC}
    process = subprocess.Popen([sys.executable, "-m", "qhpo", *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.3)
            if not storage.exists():
                continue
            try:
                trials = load(storage).trials
            except (KeyError, Exception):
                continue
            done = [t for t in trials if t.state in FINISHED]
            running = [t for t in trials if t.state == TrialState.RUNNING and len(t.intermediate_values) >= 1]
            if len(done) >= 1 and running:
                victim = running[0].number
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        if process.poll() is None and victim is None:
            process.kill()
        process.wait()
    assert victim is not None, f"the run ended before it could be killed: {process.stderr.read()}"

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
    assert curve(retry)[: min(resumed, len(curve(interrupted)))] == curve(interrupted)[: resumed]
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
    # The random sampler with seed 0 draws the diverging learning rate among the first trials.
    assert main(tiny_run(cifar_dir, storage, "--trials", "2", "--epochs", "2", "--space", str(space),
                         "--policy", "none", "--seed", "0")) == 0
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

    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal))))
    finished = [t for t in study.trials if t.state in FINISHED]
    assert 4 <= len(finished) <= 5  # two workers may start their last trials at the same moment
    assert len({t.user_attrs["qhpo.owner"]["pid"] for t in finished}) == 2
    assert len({tuple(sorted(t.params.items())) for t in finished}) == len(finished)  # no configuration twice
    assert all(len(t.intermediate_values) == 2 for t in finished)
    assert (journal.parent / "tiny" / "tiny-curves.png").exists()


def one_sentence(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("change, message", [
    (lambda tmp, args: args + ["--data-dir", str(tmp / "nowhere")], "CIFAR-10 was not found"),
    (lambda tmp, args: args + ["--policy", "sometimes"], "unknown policy 'sometimes'"),
    (lambda tmp, args: args + ["--annealer", "quantum-magic"], "unknown annealer 'quantum-magic'"),
    (lambda tmp, args: args + ["--predictor", "gp"], "unknown predictor 'gp'"),
    (lambda tmp, args: args + ["--trials", "-3"], "positive whole number"),
    (lambda tmp, args: args + ["--device", "tpu"], "unknown device 'tpu'"),
])
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
    space.write_text("[parameters.num_layers]\nvalue = 2\n[parameters.num_filters]\nvalue = 16\n"
                     "[parameters.batch_size]\nvalue = 64\n[parameters.learning_rate]\nvalue = 0.05\n"
                     "[parameters.momentum]\nvalue = 0.9\n")
    curves = {}
    for precision in ("fp32", "bf16"):
        storage = tmp_path / precision / "q.db"
        args = tiny_run(cifar_dir, storage, "--trials", "1", "--policy", "none", "--epochs", "2",
                        "--space", str(space), "--precision", precision, "--quiet")
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
    result = subprocess.run([sys.executable, "-m", "qhpo", "run", "--data-dir", str(missing), "--storage",
                             str(tmp_path / "q.db")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "--download" in lines[0]
