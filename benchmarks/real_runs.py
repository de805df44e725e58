"""Real CIFAR-10 searches with several stopping rules, beside what the replay predicts for them.

For each rule (default: none, median, qhpo) and each sampler seed, this runs ``qhpo run``
with the default preset (or the given flags) in a folder of its own, then reads the study:
epochs trained (and the share of the epochs a search without stopping would train),
configurations paused and resumed, the best validation accuracy and the test accuracy of
that configuration (measured once by ``qhpo run`` at the end). It then replays the
recorded table ``cifar10_cnn`` cut to the same number of epochs (``qhpo bench
--epochs-fraction``) with the same number of trials and rules, and prints the replay's
share of epochs and regret beside the real runs' figures, so that what the replay
measured can be checked against real training.

Run (each default-preset search takes about 6 to 7 minutes on 2 idle CPU cores, so the
default 3 rules x 3 seeds take about an hour)::

    python benchmarks/real_runs.py --data-dir ../shared/data --json real-runs.json

A shorter check: ``--trials 8 --epochs 4 --subset 2000 --seeds 0``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from qhpo.curves import read_curve_table, resolve_curve_table
from qhpo.optuna import PAUSED_ATTR, RESUME_OF_ATTR, configuration_counts
from qhpo.replay import run_benchmark
from qhpo.runner._summary import TEST_ATTR

RULES = ("none", "median", "qhpo")


def run_search(folder: Path, rule: str, seed: int, args) -> dict:
    """One ``qhpo run`` in ``folder``; its figures read back from the study."""
    storage = folder / "qhpo.db"
    study_name = f"{rule}-{seed}"
    command = [sys.executable, "-m", "qhpo", "run", "--quiet", "--policy", rule, "--seed", str(seed)]
    command += ["--storage", str(storage), "--study", study_name, "--preset", args.preset]
    for flag in ("data_dir", "trials", "epochs", "subset", "predictor"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag.replace('_', '-')}", str(value)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"qhpo run --policy {rule} --seed {seed} failed ({done.returncode}): {done.stderr.strip()}")
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{storage}")
    return study_figures(study, rule=rule, seed=seed, seconds=seconds)


def study_figures(study: optuna.Study, *, rule: str, seed: int, seconds: float) -> dict:
    """Epochs, pauses, best validation accuracy and its test accuracy of one finished study."""
    from qhpo.optuna import MAX_EPOCHS_ATTR, continuations

    trials = study.get_trials(deepcopy=False)
    resumed, _ = continuations(trials)
    finished = [
        t
        for t in trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) and t.number not in resumed
    ]
    epochs = int(study.user_attrs[MAX_EPOCHS_ATTR])
    trained = sum(len(t.intermediate_values) for t in finished)
    test = study.user_attrs.get(TEST_ATTR) or {}
    best = study.best_trial
    return {
        "rule": rule,
        "seed": seed,
        "configurations": configuration_counts(trials)[0],
        "epochs_trained": trained,
        "epochs_full": len(finished) * epochs,
        "cost_fraction": trained / (len(finished) * epochs),
        "paused": sum(t.user_attrs.get(PAUSED_ATTR) is not None for t in trials),
        "resumed": sum(t.user_attrs.get(RESUME_OF_ATTR) is not None for t in trials),
        "best_validation": float(best.value),
        "best_trial": best.number,
        "test_accuracy": test.get("accuracy"),
        "seconds": round(seconds, 1),
    }


def replay_figures(rules, trials: int, epochs: int, seeds: int, min_completed: int | None) -> dict:
    """The replay of ``cifar10_cnn`` cut to ``epochs`` epochs, ``trials`` per seed: share of
    epochs and regret (accuracy lost against the best of the drawn trials) per rule, qhpo
    with the preset's ``min_completed`` as in the real runs."""
    table = read_curve_table(resolve_curve_table("cifar10_cnn")).truncate(epochs)
    options = {} if min_completed is None else {"qhpo": {"min_completed": min_completed}}
    result = run_benchmark(table, policies=list(rules), trials=trials, seeds=seeds, predictor="svr", options=options)
    return {
        rule: {
            "cost_fraction": result["policies"][rule]["cost_fraction_mean"],
            "regret": result["policies"][rule]["regret_mean"],
            "best_kept": result["policies"][rule]["top1_kept_rate"],
        }
        for rule in rules
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder that contains cifar-10-batches-py/")
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated --policy values")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampler seeds (qhpo run --seed)")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--trials", type=int, default=None, help="override the preset's trials")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--subset", type=int, default=None, help="override the preset's training images")
    parser.add_argument("--predictor", default=None, help="qhpo's predictor (default: the preset's)")
    parser.add_argument("--replay-seeds", type=int, default=20)
    parser.add_argument("--keep", default=None, help="keep the runs' folders here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="write every figure as JSON")
    args = parser.parse_args()
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]

    from qhpo.runner import PRESETS

    preset = PRESETS[args.preset]
    trials = args.trials or preset.trials
    epochs = args.epochs or preset.epochs
    runs = []
    with tempfile.TemporaryDirectory(prefix="qhpo-real-runs-") as scratch:
        base = Path(args.keep or scratch)
        for seed in args.seeds:  # seed by seed: a benchmark cut short still compares the rules
            for rule in rules:
                folder = base / f"{rule}-{seed}"
                folder.mkdir(parents=True, exist_ok=True)
                run = run_search(folder, rule, seed, args)
                runs.append(run)
                if args.json:  # after every run, so that an interrupted benchmark keeps what it measured
                    Path(args.json).write_text(json.dumps({"runs": runs}, indent=1), encoding="utf-8")
                print(
                    f"{rule:>8} seed {seed}: {run['epochs_trained']}/{run['epochs_full']} epochs, "
                    f"best validation {run['best_validation']:.4f}, test {run['test_accuracy']}, "
                    f"{run['paused']} paused, {run['resumed']} resumed, {run['seconds']:.0f} s",
                    flush=True,
                )
    replay = replay_figures(rules, trials, epochs, args.replay_seeds, preset.min_completed)
    print()
    print(
        f"{trials} configurations x {epochs} epochs; real runs on seeds {args.seeds}, replay on {args.replay_seeds} seeds"
    )
    print(
        f"{'rule':>8} {'epochs (real)':>14} {'share (real)':>13} {'share (replay)':>15} "
        f"{'best val':>9} {'test':>7} {'regret (replay)':>16} {'best kept (replay)':>19}"
    )
    summary = {}
    for rule in rules:
        mine = [r for r in runs if r["rule"] == rule]
        test = [r["test_accuracy"] for r in mine if r["test_accuracy"] is not None]
        row = {
            "epochs_trained_mean": float(np.mean([r["epochs_trained"] for r in mine])),
            "cost_fraction_mean": float(np.mean([r["cost_fraction"] for r in mine])),
            "best_validation_mean": float(np.mean([r["best_validation"] for r in mine])),
            "test_accuracy_mean": float(np.mean(test)) if test else None,
            "replay": replay[rule],
        }
        summary[rule] = row
        print(
            f"{rule:>8} {row['epochs_trained_mean']:>14.1f} {row['cost_fraction_mean']:>13.1%} "
            f"{replay[rule]['cost_fraction']:>15.1%} {row['best_validation_mean']:>9.4f} "
            f"{row['test_accuracy_mean'] if row['test_accuracy_mean'] is not None else float('nan'):>7.4f} "
            f"{replay[rule]['regret']:>16.4f} {replay[rule]['best_kept']:>19.0%}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=1), encoding="utf-8")
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
