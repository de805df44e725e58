"""Whether one settled worker of the live replay decides as the in-process replay, row by row.

For every table of a folder, every rule and seed, replays the seed's drawn rows in-process
(:func:`qhpo.replay.replay_rule`) and live with one worker and ``--settle``: in a real Optuna
study (``--backend optuna``, :func:`qhpo.replay.replay_live`, ``epoch_seconds=0``) or as real
Ray Tune trials (``--backend ray``, :func:`qhpo.ray.replay_live_on_ray`), and compares the
epochs trained by each row, the completed rows, the pauses and the resumptions (in order).
Prints, per table and rule, on how many seeds all four are identical, and the first seeds
that differ with the rows that trained differently. Run:

    python benchmarks/live_replay.py [--backend optuna|ray] [--curves ../shared/data/curves]
        [--rules qhpo] [--seeds 10] [--first-seed 0] [--trials 100] [--storage sqlite|journal]
        [--storage-dir /dev/shm/qhpo-live] [--epoch-seconds 0] [--jsonl OUT.jsonl]

``--jsonl OUT`` appends one record per table, rule and seed.

With ``--budget K`` (``--backend optuna``) both replay the seed's rows under a budget of
``K`` full trainings, as ``qhpo bench --budget K`` draws them and with the rule's budget
options: the live study tells the policy the epochs left at each claim and cuts the trial
training when the last is spent; the epochs spent when each row completed are compared too.

With ``--compare LOCAL.json LIVE.json [LIVE.json ...]`` (``qhpo bench --suite ... --json``
documents: the local replay, then live replays of consecutive seeds that together cover
the local one's), it prints instead, per table and rule, the mean cost and regret of both,
twice the standard error of their difference (``sqrt(sd_local^2 / n + sd_live^2 / n)``),
whether the difference is within it, and on how many seeds both are the same.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from qhpo.curves import read_curve_table
from qhpo.replay import BudgetSettings, LiveSettings, budget_order, draw_order, live_rules, replay_rule

REPO = Path(__file__).resolve().parent.parent


def compare(
    table, rule: str, seed: int, trials: int, live: LiveSettings, predictor: str, budget: float | None = None
) -> dict:
    """The in-process and the live replay of one seed, side by side (``budget``: full trainings)."""
    drawn, common = table.take(draw_order(table.n_trials, trials, seed)), {}
    if budget is not None:
        settings = BudgetSettings(budget)
        epochs = settings.epochs(table)
        drawn = table.take(budget_order(table.n_trials, epochs, seed))
        common = dict(options=settings.rule_options(rule, table), budget=epochs)
    local = replay_rule(rule, drawn, seed=seed, predictor=predictor, **common)
    started = time.perf_counter()
    _, replay_live = live_rules(live)
    other = replay_live(rule, drawn, seed=seed, predictor=predictor, live=live, **common)
    same_rows = bool(
        np.array_equal(local.epochs_trained, other.epochs_trained) and np.array_equal(local.complete, other.complete)
    )
    if budget is not None:
        same_rows = same_rows and np.array_equal(local.completed_at, other.completed_at)
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


def two_standard_errors(local: dict, live: dict, key: str) -> tuple[float, float, float, int]:
    """Means of ``key`` over seeds, twice the standard error of their difference, and the seeds alike."""
    a = np.array(local["per_seed"][key], dtype=float)
    b = np.array(live["per_seed"][key], dtype=float)
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if len(a) > 1 else 0.0
    return float(a.mean()), float(b.mean()), float(2 * se), int(np.sum(a == b))


def joined(paths: list[Path]) -> dict:
    """Suite documents of consecutive seeds as one: each rule's per-seed values one after the other."""
    documents = sorted((json.loads(p.read_text(encoding="utf-8")) for p in paths), key=lambda d: d["first_seed"])
    out = documents[0]
    for document in documents[1:]:
        for name, table in document["tables"].items():
            for rule, summary in table["policies"].items():
                for key, values in summary["per_seed"].items():
                    out["tables"][name]["policies"][rule]["per_seed"][key] += values
    return out


def compare_documents(local_path: Path, *live_paths: Path) -> None:
    """Print the local and live means of every table and rule of suite documents, with 2 SE."""
    local = json.loads(local_path.read_text(encoding="utf-8"))
    live = joined(list(live_paths))
    print(
        f"{'table':<22}{'rule':<11}{'cost local':>11}{'live':>8}{'2 SE':>7}  {'regret local':>13}{'live':>10}"
        f"{'2 SE':>10}  within  same seeds"
    )
    within, rows = 0, 0
    for name, table in live["tables"].items():
        for rule, summary in table["policies"].items():
            reference = local["tables"][name]["policies"][rule]
            assert len(reference["per_seed"]["regret"]) == len(summary["per_seed"]["regret"]), "not the same seeds"
            c0, c1, c2, cs = two_standard_errors(reference, summary, "cost_fraction")
            r0, r1, r2, rs = two_standard_errors(reference, summary, "regret")
            inside = abs(c1 - c0) <= c2 and abs(r1 - r0) <= r2
            within, rows = within + inside, rows + 1
            print(
                f"{name:<22}{rule:<11}{c0:>11.1%}{c1:>8.1%}{100 * c2:>7.1f}  {r0:>13.4g}{r1:>10.4g}{r2:>10.3g}  "
                f"{'yes' if inside else 'NO':<6}  cost {cs}, regret {rs} of {len(summary['per_seed']['regret'])}"
            )
    print(f"within two standard errors (cost and regret): {within} of {rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="optuna", choices=("optuna", "ray"))
    parser.add_argument("--curves", type=Path, default=REPO.parent / "shared" / "data" / "curves")
    parser.add_argument("--rules", default="qhpo", help="comma-separated rules (qhpo policies or Optuna pruners)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--predictor", default="svr")
    parser.add_argument("--storage", default="sqlite", choices=("sqlite", "journal"))
    parser.add_argument("--storage-dir", type=Path, default=None, help="keep the studies here (default: temporary)")
    parser.add_argument("--epoch-seconds", type=float, default=0.0, help="real seconds per epoch (default 0)")
    parser.add_argument(
        "--budget", type=float, default=None, metavar="K", help="replay under K full trainings per seed (optuna)"
    )
    parser.add_argument("--jsonl", type=Path, default=None, metavar="OUT", help="append one record per seed here")
    parser.add_argument(
        "--compare", type=Path, nargs="+", default=None, metavar="JSON", help="LOCAL.json LIVE.json ..."
    )
    args = parser.parse_args()
    if args.compare is not None:
        compare_documents(*args.compare)
        return
    if args.budget is not None and (args.backend != "optuna" or not args.budget > 0):
        parser.error("--budget takes a positive number of full trainings, with --backend optuna")
    live = LiveSettings(
        storage=args.storage,
        folder=args.storage_dir,
        epoch_seconds=args.epoch_seconds,
        settle=True,
        backend=args.backend,
    )
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for path in sorted(args.curves.glob("*.csv")):
        table = read_curve_table(path)
        for rule in args.rules.split(","):
            records = [compare(table, rule, seed, args.trials, live, args.predictor, args.budget) for seed in seeds]
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
