"""What the default rule wins with perfect prediction: the headroom of its predictor.

For every table of a folder this replays, on the same seeds and draws, the baselines
(``median,sha,hyperband``), ``qhpo`` with its SVR predictor and ``qhpo`` with the oracle
(``qhpo bench --predictor oracle``: the recorded value at the epoch the rule asks about,
zero uncertainty), and applies the suite's target (:func:`qhpo.replay.verdict`) to each
``qhpo``. A table that the oracle wins and the SVR does not is lost to prediction; a table
that even the oracle loses is lost to the rule (where it stops, how much it keeps).

Run (the 100 design seeds; the README's seeds 0-19):

    python benchmarks/headroom.py --seeds 100 --first-seed 100 --json headroom-100.json
    python benchmarks/headroom.py --seeds 20 --first-seed 0 --json headroom-0.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.replay import run_suite, verdict
from qhpo.replay._benchmark import TARGET_BASELINES

RULE = "qhpo"


def headroom(tables, *, trials: int, seeds: int, first_seed: int, jobs: int, predictor: str = "svr") -> dict:
    """Per table: the baselines, ``qhpo`` with ``predictor`` and with the oracle, and both verdicts."""
    common = dict(trials=trials, seeds=seeds, first_seed=first_seed, jobs=jobs)
    learned = run_suite(tables, policies=(*TARGET_BASELINES, RULE), predictor=predictor, **common)
    oracle = run_suite(tables, policies=(RULE,), predictor="oracle", **common)
    rows = {}
    for name, result in learned["tables"].items():
        perfect = oracle["tables"][name]["policies"][RULE]
        with_oracle = dict(result, policies={**{b: result["policies"][b] for b in TARGET_BASELINES}, RULE: perfect})
        rows[name] = {
            "spread": result["spread"],
            "baselines": {b: _point(result["policies"][b], result["spread"]) for b in TARGET_BASELINES},
            predictor: _point(result["policies"][RULE], result["spread"]),
            "oracle": _point(perfect, result["spread"]),
            "verdict": {predictor: result["verdict"], "oracle": verdict(with_oracle)},
        }
    return {
        "trials": trials,
        "seeds": seeds,
        "first_seed": first_seed,
        "predictor": predictor,
        "seconds": round(learned["seconds"] + oracle["seconds"], 1),
        "tables": rows,
    }


def _point(stats: dict, spread: float) -> dict:
    return {
        "cost": stats["cost_fraction_mean"],
        "regret": stats["regret_mean"],
        "regret_spread": stats["regret_normalised_mean"],
    }


def format_headroom(result: dict) -> str:
    p = result["predictor"]
    cell = lambda x: f"{x['cost']:>6.1%} / {x['regret_spread']:<6.3f}"  # noqa: E731
    lines = [
        f"{len(result['tables'])} tables, {result['trials']} trials x seeds {result['first_seed']}-"
        f"{result['first_seed'] + result['seeds'] - 1}; each cell: cost / regret / spread",
        f"{'table':<22}" + "".join(f"{b:>17}" for b in TARGET_BASELINES) + f"{'qhpo ' + p:>17}{'qhpo oracle':>17}"
        f"  target {p} / oracle",
    ]
    for name, row in result["tables"].items():
        v = row["verdict"]
        lines.append(
            f"{name:<22}"
            + "".join(f"{cell(row['baselines'][b]):>17}" for b in TARGET_BASELINES)
            + f"{cell(row[p]):>17}{cell(row['oracle']):>17}"
            + f"  {'pass' if v[p]['pass'] else 'fail'} / {'pass' if v['oracle']['pass'] else 'fail'}"
        )
    for name, row in result["tables"].items():
        lines.append(f"{name} oracle: {row['verdict']['oracle']['why']}")
    lines.append(f"wall time: {result['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=None, help="folder of curve tables (*.csv; default: the built-in tables)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--predictor", default="svr", help="the learned predictor to compare (svr or qsvr)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    folder = Path(args.suite) if args.suite else builtin_tables_folder()
    tables = [read_curve_table(path) for path in sorted(folder.glob("*.csv"))]
    result = headroom(
        tables,
        trials=args.trials,
        seeds=args.seeds,
        first_seed=args.first_seed,
        jobs=args.jobs,
        predictor=args.predictor,
    )
    print(format_headroom(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
