"""Load on one PostgreSQL server: many worker processes replaying recorded curves through qhpo's claim and pruner.

Starts ``--workers`` processes (16 by default) on one study in one database. Each loops as a
``qhpo run`` worker does: it claims a trial under the database's claim lock
(``qhpo.runner._worker.claim_trial``: recovery, exact ``--trials``), replays one recorded
CIFAR-10 curve (a row drawn by the trial's sampler) epoch by epoch through qhpo's default
policy (``PredictivePruner("qhpo", "svr")``) and tells the trial's end. No network is
trained, so the server, the claim lock and the pruner's reads carry all the load. It then
checks that every process ended without an error (a deadlock the server detects is an error;
one it does not ends the run at ``--timeout``), that the study holds exactly ``--trials``
finished trials and nothing running, and prints the latency of ``trial.should_prune()`` at
decision epochs and of a claim (median, p95, max). Run:

    python benchmarks/postgres_load.py [--workers 16] [--trials 320] [--epochs 20] [--storage URL] [--json OUT]

``--storage`` is a ``postgresql://`` URL of an empty database, or ``pgserver`` (default): a
PostgreSQL server of the ``pgserver`` package started in a temporary folder for the run.
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

REPO = Path(__file__).resolve().parent.parent
STUDY = "load"

_WORKER = """
import json, sys, time
import numpy as np
import optuna
from qhpo.curves import read_curve_table
from qhpo.optuna import PredictivePruner
from qhpo.runner import resolve_storage
from qhpo.runner._worker import claim_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
url, run_dir, table_path, epochs, target, index, out = sys.argv[1:8]
epochs, target, index = int(epochs), int(target), int(index)
table = read_curve_table(table_path).truncate(epochs)
location = resolve_storage(url, run_dir)
pruner = PredictivePruner("qhpo", "svr", max_epochs=epochs, random_state=0)
study = optuna.load_study(study_name="load", storage=location.open(), pruner=pruner,
                          sampler=optuna.samplers.RandomSampler(seed=index))
decisions, claims, trained = [], [], 0
while True:
    start = time.perf_counter()
    claim = claim_trial(study, location, target)
    claims.append(time.perf_counter() - start)
    if claim.done:
        break
    if claim.wait:
        time.sleep(0.05)
        continue
    trial = claim.trial
    curve = table.curves[trial.suggest_int("row", 0, table.n_trials - 1)]
    decision_epochs = set(pruner.policy_.decision_epochs()) if pruner.policy_ is not None else set()
    for epoch, value in enumerate(curve, start=1):
        trial.report(float(value), epoch)
        start = time.perf_counter()
        prune = trial.should_prune()
        if epoch in decision_epochs:
            decisions.append(time.perf_counter() - start)
        if prune:
            pruner.flush()
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            break
    else:
        pruner.flush()
        study.tell(trial, float(curve[-1]))
    trained += 1
json.dump({"decisions": decisions, "claims": claims, "trials": trained}, open(out, "w"))
"""


def _pgserver(folder: Path):
    import warnings

    import pgserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(folder, cleanup_mode="stop")
    server.psql("CREATE DATABASE load;")
    head, query = server.get_uri().split("?", 1)
    return server, f"{head.rsplit('/', 1)[0]}/load?{query}"


def _stats(seconds: list[float]) -> dict:
    import numpy as np

    ms = np.array(seconds) * 1e3
    if not ms.size:
        return {"n": 0}
    return {
        "n": int(ms.size),
        "median_ms": round(float(np.median(ms)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--trials", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--storage", default="pgserver", metavar="URL")
    parser.add_argument("--table", default=str(REPO.parent / "shared" / "data" / "curves" / "cifar10_cnn.csv"))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before the run counts as hung")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    import optuna

    from qhpo.optuna import configuration_counts
    from qhpo.runner import resolve_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="qhpo-load-") as scratch:
        scratch = Path(scratch)
        server, url = _pgserver(scratch / "pg") if args.storage == "pgserver" else (None, args.storage)
        try:
            location = resolve_storage(url, scratch / "run")
            storage = location.open()
            with location.creation_lock():
                optuna.create_study(study_name=STUDY, storage=storage, direction="maximize", load_if_exists=True)
            env = {
                **os.environ,
                "OMP_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
            }
            start = time.monotonic()
            processes = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _WORKER,
                        url,
                        str(scratch / f"run{i}"),
                        args.table,
                        str(args.epochs),
                        str(args.trials),
                        str(i),
                        str(scratch / f"w{i}.json"),
                    ],
                    env=env,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i in range(args.workers)
            ]
            errors, hung = [], 0
            for process in processes:
                try:
                    _, err = process.communicate(timeout=max(1.0, args.timeout - (time.monotonic() - start)))
                except subprocess.TimeoutExpired:
                    process.kill()
                    _, err = process.communicate()
                    hung += 1
                if process.returncode != 0:
                    errors.append(err.strip().splitlines()[-1] if err.strip() else f"status {process.returncode}")
            seconds = time.monotonic() - start
            reports = [json.loads(p.read_text()) for p in sorted(scratch.glob("w*.json"))]
            trials = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
            finished, running = configuration_counts(trials)
            result = {
                "workers": args.workers,
                "trials_asked": args.trials,
                "epochs": args.epochs,
                "finished": finished,
                "running_left": running,
                "failed": sum(t.state == optuna.trial.TrialState.FAIL for t in trials),
                "processes_with_errors": len(errors),
                "errors": errors[:3],
                "processes_hung": hung,
                "trials_per_process": [r["trials"] for r in reports],
                "should_prune_at_decision_epochs": _stats([s for r in reports for s in r["decisions"]]),
                "claim": _stats([s for r in reports for s in r["claims"]]),
                "seconds": round(seconds, 1),
                "storage": location.describe(),
            }
        finally:
            if server is not None:
                server.cleanup()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = not errors and not hung and finished == args.trials and running == 0 and result["failed"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
