"""What the default rule wins with perfect prediction: the headroom of its predictor.

For every table of a folder this replays, on the same seeds and draws, the baselines
(``median,sha,hyperband``), the rule (``--rule``, default ``qhpo``) with its SVR predictor
and with each oracle (``qhpo bench --predictor oracle``: the recorded value at the epoch
the rule asks about, zero uncertainty; ``oracle-final``: the recorded final value whatever
the epoch asked about), and applies the suite's target (``suite_target.check_table``, beside this script) to
each. A table that the oracle wins and the SVR does not is lost to prediction; a table
that even the oracle loses is lost to the rule (where it stops, how much it keeps).

Run (the 100 design seeds; the README's seeds 0-19):

    python benchmarks/headroom.py --seeds 100 --first-seed 100 --json headroom-100.json
    python benchmarks/headroom.py --seeds 20 --first-seed 0 --json headroom-0.json
    python benchmarks/headroom.py --rule qhpo-stop --seeds 100 --first-seed 100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.replay import run_suite
from suite_target import TARGET_BASELINES, check_table

ORACLES = ("oracle", "oracle-final")


def headroom(
    tables,
    *,
    trials: int,
    seeds: int,
    first_seed: int,
    jobs: int,
    predictor: str = "svr",
    rule: str = "qhpo",
    oracles=ORACLES,
) -> dict:
    """Per table: the baselines, ``rule`` with ``predictor`` and with each oracle, and the target checks."""
    common = dict(trials=trials, seeds=seeds, first_seed=first_seed, jobs=jobs)
    learned = run_suite(tables, policies=(*TARGET_BASELINES, rule), predictor=predictor, **common)
    perfect = {o: run_suite(tables, policies=(rule,), predictor=o, **common) for o in oracles}
    rows = {}
    for name, result in learned["tables"].items():
        baselines = {b: result["policies"][b] for b in TARGET_BASELINES}
        row = {
            "spread": result["spread"],
            "baselines": {b: _point(s) for b, s in baselines.items()},
            predictor: _point(result["policies"][rule]),
            "target": {predictor: check_table(result, rule)},
        }
        for o, run in perfect.items():
            stats = run["tables"][name]["policies"][rule]
            row[o] = _point(stats)
            row["target"][o] = check_table(dict(result, policies={**baselines, rule: stats}), rule)
        rows[name] = row
    return {
        "rule": rule,
        "trials": trials,
        "seeds": seeds,
        "first_seed": first_seed,
        "predictor": predictor,
        "oracles": list(oracles),
        "seconds": round(learned["seconds"] + sum(run["seconds"] for run in perfect.values()), 1),
        "tables": rows,
    }


def _point(stats: dict) -> dict:
    return {
        "cost": stats["cost_fraction_mean"],
        "regret": stats["regret_mean"],
        "regret_spread": stats["regret_normalised_mean"],
    }


def format_headroom(result: dict) -> str:
    p, rule, oracles = result["predictor"], result["rule"], result["oracles"]
    columns = [p, *oracles]
    cell = lambda x: f"{x['cost']:>6.1%} / {x['regret_spread']:<6.3f}"  # noqa: E731
    lines = [
        f"{len(result['tables'])} tables, {result['trials']} trials x seeds {result['first_seed']}-"
        f"{result['first_seed'] + result['seeds'] - 1}; each cell: cost / regret / spread",
        f"{'table':<22}"
        + "".join(f"{b:>17}" for b in TARGET_BASELINES)
        + "".join(f" {rule + ' ' + c:>21}" for c in columns)
        + "  target "
        + " / ".join(columns),
    ]
    for name, row in result["tables"].items():
        v = row["target"]
        lines.append(
            f"{name:<22}"
            + "".join(f"{cell(row['baselines'][b]):>17}" for b in TARGET_BASELINES)
            + "".join(f"{cell(row[c]):>22}" for c in columns)
            + "  "
            + " / ".join("pass" if v[c]["pass"] else "fail" for c in columns)
        )
    for name, row in result["tables"].items():
        for c in columns:
            lines.append(f"{name} {c}: {row['target'][c]['why']}")
    lines.append(f"wall time: {result['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=None, help="folder of curve tables (*.csv; default: the built-in tables)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--predictor", default="svr", help="the learned predictor to compare (svr or qsvr)")
    parser.add_argument("--rule", default="qhpo", help="the predictive rule judged (qhpo, qhpo-stop)")
    parser.add_argument("--oracles", default=",".join(ORACLES), help="oracle, oracle-final or both (default)")
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
        rule=args.rule,
        oracles=tuple(o for o in args.oracles.split(",") if o),
    )
    print(format_headroom(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
