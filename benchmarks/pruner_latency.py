"""Latency of PredictivePruner.prune() in a real SQLite study with hundreds of trials.

Replays the recorded CIFAR-10 curves (rows drawn with replacement, first EPOCHS epochs)
through a study whose pruner is qhpo's default policy, and prints the time of every
``trial.should_prune()`` call, split by whether the policy was consulted (a decision
epoch) or not, once with Optuna's in-memory storage (the pruner's own cost) and once with
a SQLite file (plus the storage's reads). Predictor fits run in the pruner's background
thread and are not part of these times. Run:

    python benchmarks/pruner_latency.py [--trials 300] [--epochs 40] [--predictor svr]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from qhpo.curves import read_curve_table
from qhpo.optuna import PredictivePruner

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(REPO.parent / "shared" / "data" / "curves" / "cifar10_cnn.csv"))
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--predictor", default="svr")
    args = parser.parse_args()

    table = read_curve_table(args.table).truncate(args.epochs)
    rows = np.random.default_rng(0).integers(0, table.n_trials, size=args.trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for storage in ("memory", "sqlite"):
        measure(table, rows, args, storage)


def measure(table, rows, args, storage_kind: str) -> None:
    pruner = PredictivePruner("qhpo", args.predictor, max_epochs=args.epochs, random_state=0)
    decision_epochs: set[int] = set()
    at_decision: list[float] = []
    between: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        storage = None if storage_kind == "memory" else f"sqlite:///{folder}/latency.db"
        study = optuna.create_study(storage=storage, direction="maximize", pruner=pruner)

        def objective(trial):
            if pruner.policy_ is not None:  # steady state: the fits queued so far have landed
                pruner.policy_.service.wait(60)
            curve = table.curves[rows[trial.number]]
            for epoch, value in enumerate(curve, start=1):
                trial.report(float(value), epoch)
                start = time.perf_counter()
                prune = trial.should_prune()
                (at_decision if epoch in decision_epochs else between).append(time.perf_counter() - start)
                if prune:
                    raise optuna.TrialPruned()
            pruner.flush()
            return float(curve[-1])

        start = time.perf_counter()
        study.optimize(objective, n_trials=1)
        decision_epochs.update(pruner.policy_.decision_epochs())
        study.optimize(objective, n_trials=args.trials - 1)
        total = time.perf_counter() - start
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(f"{storage_kind} storage, {args.trials} trials x {args.epochs} epochs, policy qhpo, predictor {args.predictor}: "
          f"{pruned} pruned, {total:.1f} s in all")
    for name, times in (("at decision epochs", at_decision), ("between decision epochs", between)):
        ms = np.array(times) * 1e3
        print(f"should_prune() {name}: n={ms.size} median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
              f"max {ms.max():.2f} ms")
    service = pruner.policy_.service
    print(f"background predictor fits: {service.n_fits}, {service.fit_seconds:.2f} s in all (off the trials' path)")


if __name__ == "__main__":
    main()
