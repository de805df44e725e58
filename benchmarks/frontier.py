"""Which settings of the default rule meet the target on which table.

The default policy (``qhpo``, :class:`qhpo.policies.PredictiveHalving`) has two settings
that set how hard it stops: the reduction factor ``eta`` (rungs grow by ``eta``, each rung
keeps the best ``1/eta``) and the first rung (``min_resource``, by default
``round(E/20)`` epochs, at least 1). This benchmark replays the rule on every table of a
folder at every pair of

- ``eta`` in ``--etas`` (default 1.5, 1.75, 2, 2.5, 3, 4, 5), and
- first rung ``max(1, round(m * round(E/20)))`` for ``m`` in ``--first-rung`` (default
  0.5, 1, 2, 3; pairs that round to the same first rung are replayed once),

beside the baselines of the same seeds, and applies the suite's target
(``suite_target.check_table``, beside this script) to each. It prints, per table, the settings that meet the
target (or, where none does, the setting closest to it), and per setting the number of
tables on which it meets the target. A table on which no setting meets it cannot be won by
tuning the rule's aggressiveness, even per table; a table that some settings win but the
default does not is lost to the one-setting-for-every-table rule.

The baselines (``median,sha,hyperband`` by default; add ``baker,conformal`` for the full
"no baseline better on both" check) are replayed here, or read from the JSON that
``qhpo bench --suite FOLDER --json FILE`` wrote for the same trials and seeds
(``--baselines-json``; every rule in it other than ``qhpo`` counts as a baseline).

Run (the 100 design seeds, SVR predictor; about 17 minutes on 2 cores):

    python benchmarks/frontier.py --seeds 100 --first-seed 100

or on the README's seeds 0-19 against the suite's own JSON:

    qhpo bench --suite builtin --trials 100 --seeds 20 --json suite.json
    python benchmarks/frontier.py --seeds 20 --baselines-json suite.json

``--suite FOLDER`` replays another folder of tables (default: the tables qhpo ships,
the same as ``qhpo bench --suite builtin``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from qhpo import QhpoError
from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.replay import run_suite
from suite_target import TARGET_BASELINES, TARGET_COST_RATIO, check_table

DEFAULT_ETA = 2.0
DEFAULT_MULTIPLIER = 1.0


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def first_rung(epochs: int, multiplier: float) -> int:
    """The first rung ``max(1, round(multiplier * max(1, round(E / 20))))``."""
    return max(1, int(round(multiplier * max(1, int(round(epochs / 20))))))


def shortfall(doc: dict, best: str, rule: str = "qhpo") -> float:
    """How far ``rule`` is from the target set by the pruner ``best`` (the one
    ``suite_target.check_table`` names): the larger of its regret over the bar (in units of
    the table's spread) and its cost ratio over the bound (0 when it meets both)."""
    policies = doc["policies"]
    ours, theirs = policies[rule], policies[best]
    bar = theirs["regret_mean"] + theirs["regret_sd"] / math.sqrt(doc["seeds"])
    spread = max(float(doc.get("spread", 0.0) or 0.0), 1e-12)
    over_regret = max(0.0, ours["regret_mean"] - bar) / spread
    over_cost = max(0.0, ours["cost_fraction_mean"] / max(theirs["cost_fraction_mean"], 1e-12) - TARGET_COST_RATIO)
    return max(over_regret, over_cost)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="builtin", help="folder of curve tables (*.csv), or builtin (default)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--predictor", default="svr", help="svr (default here) or qsvr")
    parser.add_argument("--etas", type=_floats, default=[1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0])
    parser.add_argument("--first-rung", type=_floats, default=[0.5, 1.0, 2.0, 3.0], help="multipliers of round(E/20)")
    parser.add_argument("--baselines", default="median,sha,hyperband")
    parser.add_argument("--baselines-json", type=Path, help="a `qhpo bench --suite ... --json` result to reuse")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every setting's result here")
    args = parser.parse_args(argv)

    folder = builtin_tables_folder() if args.suite == "builtin" else Path(args.suite)
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        print(f"no curve tables (*.csv) in {folder}", file=sys.stderr)
        return 2
    try:
        tables = [read_curve_table(p) for p in paths]
    except QhpoError as error:
        print(error, file=sys.stderr)
        return 2
    start = time.perf_counter()
    replay = dict(
        predictor=args.predictor, trials=args.trials, seeds=args.seeds, first_seed=args.first_seed, jobs=args.jobs
    )
    if args.baselines_json:
        try:
            base = json.loads(args.baselines_json.read_text())
            tables_in = base["tables"]
            assert isinstance(tables_in, dict)
            for doc in tables_in.values():
                for b in TARGET_BASELINES:
                    float(doc["policies"][b]["regret_mean"]) + float(doc["policies"][b]["cost_fraction_mean"])
        except (OSError, ValueError, TypeError, KeyError, AttributeError, AssertionError):
            print(
                f"{args.baselines_json} is not the JSON of `qhpo bench --suite` with the median, sha and hyperband rules",
                file=sys.stderr,
            )
            return 2
        if (base.get("trials"), base.get("seeds"), base.get("first_seed", 0)) != (
            args.trials,
            args.seeds,
            args.first_seed,
        ):
            print(
                f"{args.baselines_json} is for other trials or seeds than --trials/--seeds/--first-seed",
                file=sys.stderr,
            )
            return 2
    else:
        names = tuple(n.strip() for n in args.baselines.split(",") if n.strip())
        base = run_suite(tables, policies=names, **replay)
    results: dict[str, dict] = {}
    wins: dict[tuple[float, float], list[str]] = {(e, m): [] for e in args.etas for m in args.first_rung}
    for table in tables:
        stem = table.name
        if stem not in base["tables"]:
            print(f"{stem}: not in the baselines' result", file=sys.stderr)
            return 2
        runs: dict[tuple[float, int], dict] = {}
        passing, closest = [], None
        for eta in args.etas:
            for m in args.first_rung:
                r0 = first_rung(table.epochs, m)
                if (eta, r0) not in runs:
                    options = {"qhpo": {"reduction_factor": eta, "min_resource": r0}}
                    ours = run_suite([table], policies=("qhpo",), options=options, **replay)
                    baseline = base["tables"][stem]
                    doc = dict(
                        baseline, policies=dict(baseline["policies"], qhpo=ours["tables"][stem]["policies"]["qhpo"])
                    )
                    v = check_table(doc)
                    best = v["best"]
                    runs[(eta, r0)] = {
                        "eta": eta,
                        "first_rung": r0,
                        "cost_fraction_mean": doc["policies"]["qhpo"]["cost_fraction_mean"],
                        "regret_mean": doc["policies"]["qhpo"]["regret_mean"],
                        "pass": bool(v["pass"]),
                        "why": v["why"],
                        "shortfall": shortfall(doc, best),
                    }
                run = runs[(eta, r0)]
                if run["pass"]:
                    wins[(eta, m)].append(stem)
        for run in runs.values():
            label = f"eta {run['eta']:g}, first rung {run['first_rung']}"
            cell = f"{label}: {run['cost_fraction_mean']:.1%} / {run['regret_mean']:.3g}"
            if run["pass"]:
                passing.append(cell)
            elif closest is None or run["shortfall"] < closest[0]:
                closest = (run["shortfall"], f"{cell} ({run['why']})")
        head = f"{stem} (E={table.epochs}, best pruner {best}):"
        if passing:
            print(f"{head} {len(passing)} of {len(runs)} settings meet the target: " + "; ".join(passing))
        else:
            print(f"{head} none of {len(runs)} settings meets the target; closest {closest[1]}")
        results[stem] = {f"{e:g}/{r}": run for (e, r), run in runs.items()}
    print()
    print("settings by the number of tables on which they meet the target (eta, first rung x round(E/20)):")
    for (eta, m), stems in sorted(wins.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        mark = "  (default)" if (eta, m) == (DEFAULT_ETA, DEFAULT_MULTIPLIER) else ""
        print(f"  eta {eta:g}, x{m:g}: {len(stems)} of {len(tables)}{mark}  {', '.join(stems)}")
    per_table = sum(1 for stem in results if any(r["pass"] for r in results[stem].values()))
    print(f"tables that some setting wins: {per_table} of {len(tables)}; {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps({"seeds": args.seeds, "first_seed": args.first_seed, "tables": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
