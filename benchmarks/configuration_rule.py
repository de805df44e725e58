"""What the configuration rule of ``qhpo`` wins: the default against each ``configuration_rule``.

For every table of a folder this replays, on the same seeds and draws, the baselines
(``median,sha,hyperband``) and ``qhpo`` (SVR) as ``qhpo bench`` does, then ``qhpo`` with each
value of its ``configuration_rule`` option (``rank``: :meth:`PredictiveHalving.promote`
also ranks paused trials by the final value predicted from their hyperparameters alone;
``average``: by the mean of that rank and the anchor's; ``average-deepest``: the same with
the model fitted on the deepest rung that six trials reached, ``configuration_budget``), and applies the suite's target
(``suite_target.check_table``, beside this script) to each, against the baselines alone. It prints per table
cost / regret ÷ spread and pass or fail, and the means over tables.

``--baselines RUN.json`` reads the baselines and the default from a ``qhpo bench --suite
... --policies median,sha,hyperband,qhpo --predictor svr --json RUN.json`` of the same
seeds instead of replaying them (the draws depend on the seed only); ``--run
VARIANT=RUN.json`` reads a variant's run (``qhpo bench --suite ... --policies qhpo
--predictor svr --policy-option ... --json RUN.json``) likewise.

Run (the design seeds; the reported seeds 0-19):

    python benchmarks/configuration_rule.py --seeds 100 --first-seed 100 --json configuration-100.json
    python benchmarks/configuration_rule.py --seeds 20 --first-seed 0 --variants average
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.replay import run_suite
from suite_target import TARGET_BASELINES, check_table

#: Each variant's options of ``qhpo``: the configuration rule of ``promote`` on the rule as
#: it was when they were measured (the first rungs ranked on the anchor alone,
#: ``configuration_weight = 0``; the model of the final value unless ``deepest``).
_BEFORE = {"configuration_weight": 0.0, "configuration_budget": "final"}
VARIANTS = {
    "rank": {**_BEFORE, "configuration_rule": "rank"},
    "average": {**_BEFORE, "configuration_rule": "average"},
    "average-deepest": {**_BEFORE, "configuration_rule": "average", "configuration_budget": "deepest"},
}


def configuration_rule(
    tables, *, trials: int, seeds: int, first_seed: int, jobs: int, variants, baselines=None, saved=None
):
    """Per table: the baselines, ``qhpo`` and ``qhpo`` with each variant, with the target checks
    (``saved``: the ``qhpo bench --json`` runs of some variants, by name, to reuse)."""
    saved = dict(saved or {})
    common = dict(trials=trials, seeds=seeds, first_seed=first_seed, jobs=jobs, predictor="svr")
    if baselines is None:
        baselines = run_suite(tables, policies=(*TARGET_BASELINES, "qhpo"), **common)
    for key in ("trials", "seeds", "first_seed"):
        if baselines[key] != common[key]:
            raise SystemExit(f"the baselines were run with {key} {baselines[key]}, not {common[key]}")
    runs = {
        v: saved[v] if v in saved else run_suite(tables, policies=("qhpo",), options={"qhpo": VARIANTS[v]}, **common)
        for v in variants
    }
    for v, run in runs.items():
        if any(run[key] != common[key] for key in ("trials", "seeds", "first_seed")):
            raise SystemExit(f"the run of {v} was made with other trials or seeds")
    columns = ("default", *variants)
    rows = {}
    for table in tables:
        result = baselines["tables"][table.name]
        base = {b: result["policies"][b] for b in TARGET_BASELINES}
        stats = {"default": result["policies"]["qhpo"]}
        stats.update({v: run["tables"][table.name]["policies"]["qhpo"] for v, run in runs.items()})
        rows[table.name] = {
            "baselines": {b: _point(s) for b, s in base.items()},
            **{c: _point(stats[c]) for c in columns},
            "target": {c: check_table(dict(result, policies={**base, "qhpo": stats[c]}), "qhpo") for c in columns},
        }
    means = {c: _mean([row[c] for row in rows.values()]) for c in columns}
    means.update({b: _mean([row["baselines"][b] for row in rows.values()]) for b in TARGET_BASELINES})
    return {
        "trials": trials,
        "seeds": seeds,
        "first_seed": first_seed,
        "variants": list(variants),
        "seconds": round(sum(run["seconds"] for run in runs.values()), 1),
        "tables": rows,
        "means": means,
        "passed": {c: sorted(n for n, row in rows.items() if row["target"][c]["pass"]) for c in columns},
    }


def _point(stats: dict) -> dict:
    return {
        "cost": stats["cost_fraction_mean"],
        "regret_spread": stats["regret_normalised_mean"],
        "resumed": stats.get("resumed_mean"),
        "winner_resumed": stats.get("winner_resumed_rate"),
    }


def _mean(points: list[dict]) -> dict:
    return {k: float(np.mean([p[k] for p in points])) for k in ("cost", "regret_spread")}


def format_result(result: dict) -> str:
    columns = ("default", *result["variants"])
    cell = lambda x: f"{x['cost']:>6.1%} / {x['regret_spread']:<6.3f}"  # noqa: E731
    header = f"{'table':<22}" + "".join(f"{b:>17}" for b in TARGET_BASELINES)
    lines = [
        f"{len(result['tables'])} tables, {result['trials']} trials x seeds {result['first_seed']}-"
        f"{result['first_seed'] + result['seeds'] - 1}; each cell: cost / regret / spread; qhpo (SVR) columns "
        f"with pass or fail of the suite target, and resumptions per seed",
        header + "".join(f"{'qhpo ' + c:>28}" for c in columns),
    ]
    for name, row in result["tables"].items():
        line = f"{name:<22}" + "".join(f"{cell(row['baselines'][b]):>17}" for b in TARGET_BASELINES)
        for c in columns:
            mark = "pass" if row["target"][c]["pass"] else "fail"
            line += f"{cell(row[c]):>17} {mark} {row[c]['resumed'] or 0:>4.1f}"
        lines.append(line)
    m = result["means"]
    lines.append(
        f"{'mean over tables':<22}"
        + "".join(f"{cell(m[b]):>17}" for b in TARGET_BASELINES)
        + "".join(f"{cell(m[c]):>17} {len(result['passed'][c])}/{len(result['tables'])}     " for c in columns)
    )
    lines.append(f"replay wall time of the variants: {result['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=None, help="folder of curve tables (*.csv; default: the built-in tables)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"some of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--baselines", type=Path, help="a qhpo bench --json run of the baselines and qhpo to reuse")
    parser.add_argument(
        "--run", action="append", default=[], metavar="VARIANT=RUN.json", help="a qhpo bench --json run to reuse"
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    folder = Path(args.suite) if args.suite else builtin_tables_folder()
    tables = [read_curve_table(path) for path in sorted(folder.glob("*.csv"))]
    variants = tuple(v for v in args.variants.split(",") if v)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    baselines = json.loads(args.baselines.read_text(encoding="utf-8")) if args.baselines else None
    result = configuration_rule(
        tables,
        trials=args.trials,
        seeds=args.seeds,
        first_seed=args.first_seed,
        jobs=args.jobs,
        variants=variants,
        baselines=baselines,
        saved={k: json.loads(Path(v).read_text(encoding="utf-8")) for k, v in (r.split("=", 1) for r in args.run)},
    )
    print(format_result(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
