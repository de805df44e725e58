"""Latency of PredictivePruner.prune() in real studies with hundreds or thousands of trials.

Replays the recorded CIFAR-10 curves (rows drawn with replacement, first EPOCHS epochs)
through a study whose pruner is qhpo's default policy, and prints the time of every
``trial.should_prune()`` call, split by whether the policy was consulted (a decision
epoch) or not, with Optuna's in-memory storage (the pruner's own cost), a SQLite file and
a journal file (plus the storage's reads), or with a database server (``--storage URL``,
for example ``postgresql://user:password@host/db``; ``--storage pgserver`` starts a
PostgreSQL server of the ``pgserver`` package in a temporary folder). Predictor fits run in
the pruner's background thread and are not part of these times. Run:

    python benchmarks/pruner_latency.py [--trials 300] [--epochs 40] [--predictor svr] [--json OUT]
    python benchmarks/pruner_latency.py --storage pgserver --trials 2000

``--json OUT`` writes ``{"trials", "memory_ms_median", "sqlite_ms_median",
"journal_ms_median"}`` (``"postgresql_ms_median"`` with ``--storage``): the median
milliseconds of a call at a decision epoch.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--storages", default="memory,sqlite,journal", help="comma-separated: memory, sqlite, journal")
    parser.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="measure this database server instead (a URL, or pgserver: a PostgreSQL server started for the run)",
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="write the medians at decision epochs here")
    args = parser.parse_args()
    server = None
    if args.storage == "pgserver":
        server, args.storage = _pgserver()
    if args.storage is not None:
        args.storages = "postgresql" if args.storage.startswith("postgres") else "rdb"

    table = read_curve_table(args.table).truncate(args.epochs)
    rows = np.random.default_rng(0).integers(0, table.n_trials, size=args.trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result: dict[str, float | int] = {"trials": args.trials, "epochs": args.epochs}
    for storage in args.storages.split(","):
        result[f"{storage}_ms_median"] = measure(table, rows, args, storage)
    if args.storage is not None:
        result["storage"] = _shown(args.storage)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if server is not None:
        server.cleanup()


def _pgserver():
    """A PostgreSQL server of the pgserver package in a temporary folder, and its URL."""
    import warnings

    import pgserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(tempfile.mkdtemp(prefix="qhpo-latency-pg-"), cleanup_mode="delete")
    return server, server.get_uri()


def _shown(url: str) -> str:
    from qhpo.runner import resolve_storage

    return resolve_storage(url, create=False).describe()


def _storage(kind: str, folder: str, url: str | None = None):
    if kind == "memory":
        return None
    if kind in ("postgresql", "rdb"):
        from qhpo.runner import resolve_storage

        return resolve_storage(url, folder).open()  # as qhpo run opens it
    if kind == "sqlite":
        from qhpo.runner import resolve_storage

        return resolve_storage(f"{folder}/latency.db").open()  # as qhpo run opens it (write-ahead log)
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(f"{folder}/latency.log"))
    raise SystemExit(f"unknown storage {kind!r}; choose memory, sqlite or journal")


def measure(table, rows, args, storage_kind: str) -> float:
    """Replay the trials into a fresh study; the median ms of should_prune() at decision epochs."""
    pruner = PredictivePruner("qhpo", args.predictor, max_epochs=args.epochs, random_state=0)
    decision_epochs: set[int] = set()
    at_decision: list[float] = []
    between: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        storage = _storage(storage_kind, folder, args.storage)
        study = optuna.create_study(storage=storage, direction="maximize", pruner=pruner)  # a new study each time

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
        pruner.flush()  # the decision records are written before the storage goes
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(
        f"{storage_kind} storage, {args.trials} trials x {args.epochs} epochs, rule {pruner.rule}, predictor {args.predictor}: "
        f"{pruned} pruned, {total:.1f} s in all"
    )
    for name, times in (("at decision epochs", at_decision), ("between decision epochs", between)):
        ms = np.array(times) * 1e3
        print(
            f"should_prune() {name}: n={ms.size} median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
            f"max {ms.max():.2f} ms"
        )
    service = pruner.policy_.service
    print(f"background predictor fits: {service.n_fits}, {service.fit_seconds:.2f} s in all (off the trials' path)")
    return float(np.median(at_decision) * 1e3) if at_decision else float("nan")


if __name__ == "__main__":
    main()
