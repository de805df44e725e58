"""Whether one settled worker of the live replay decides as the in-process replay, row by row.

For every table of a folder, every rule and seed, replays the seed's drawn rows in-process
(:func:`qhpo.replay.replay_rule`) and live, in a real Optuna study with one worker process and
``--settle`` (:func:`qhpo.replay.replay_live`, ``epoch_seconds=0``), and compares the epochs
trained by each row, the completed rows, the pauses and the resumptions (in order). Prints,
per table and rule, on how many seeds all four are identical, and the first seeds that
differ with the rows that trained differently. Run:

    python benchmarks/live_replay.py [--curves ../shared/data/curves] [--rules qhpo]
        [--seeds 10] [--trials 100] [--storage sqlite|journal] [--storage-dir /dev/shm/qhpo-live]
        [--jsonl OUT.jsonl]

``--jsonl OUT`` appends one record per table, rule and seed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from qhpo.curves import read_curve_table
from qhpo.replay import LiveSettings, draw_order, replay_live, replay_rule

REPO = Path(__file__).resolve().parent.parent


def compare(table, rule: str, seed: int, trials: int, live: LiveSettings, predictor: str) -> dict:
    """The in-process and the live replay of one seed, side by side."""
    drawn = table.take(draw_order(table.n_trials, trials, seed))
    local = replay_rule(rule, drawn, seed=seed, predictor=predictor)
    started = time.perf_counter()
    other = replay_live(rule, drawn, seed=seed, predictor=predictor, live=live)
    same_rows = bool(
        np.array_equal(local.epochs_trained, other.epochs_trained) and np.array_equal(local.complete, other.complete)
    )
    return {
        "table": table.name,
        "rule": rule,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "same": same_rows and sorted(local.pauses) == sorted(other.pauses) and local.resumptions == other.resumptions,
        "cost": [int(local.epochs_trained.sum()), int(other.epochs_trained.sum())],
        "pauses": [len(local.pauses), len(other.pauses)],
        "resumptions": [len(local.resumptions), len(other.resumptions)],
        "rows_that_differ": [int(i) for i in np.flatnonzero(local.epochs_trained != other.epochs_trained)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=REPO.parent / "shared" / "data" / "curves")
    parser.add_argument("--rules", default="qhpo", help="comma-separated rules (qhpo policies or Optuna pruners)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--predictor", default="svr")
    parser.add_argument("--storage", default="sqlite", choices=("sqlite", "journal"))
    parser.add_argument("--storage-dir", type=Path, default=None, help="keep the studies here (default: temporary)")
    parser.add_argument("--jsonl", type=Path, default=None, metavar="OUT", help="append one record per seed here")
    args = parser.parse_args()
    live = LiveSettings(storage=args.storage, folder=args.storage_dir, epoch_seconds=0, settle=True)
    for path in sorted(args.curves.glob("*.csv")):
        table = read_curve_table(path)
        for rule in args.rules.split(","):
            records = [compare(table, rule, seed, args.trials, live, args.predictor) for seed in range(args.seeds)]
            if args.jsonl is not None:
                with args.jsonl.open("a", encoding="utf-8") as out:
                    out.writelines(json.dumps(r) + "\n" for r in records)
            same = sum(r["same"] for r in records)
            differ = [f"seed {r['seed']} rows {r['rows_that_differ'][:5]}" for r in records if not r["same"]][:3]
            print(
                f"{table.name:<22}{rule:<11}identical on {same}/{len(records)} seeds; "
                f"{sum(r['pauses'][0] for r in records)} pauses, {sum(r['resumptions'][0] for r in records)} "
                f"resumptions; {np.mean([r['seconds'] for r in records]):.0f} s per live seed"
                + (f"; differ: {', '.join(differ)}" if differ else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
