"""Paired differences per seed between one rule and the others, from the JSON of ``qhpo bench``.

Every rule of a replay sees the same draws on a seed, so the difference of two rules is best
read seed by seed: for each seed, the regret of each rule averaged over the tables (budget
mode: the normalised regret at each reading; otherwise the regret divided by the table's
spread), then the mean of ``rule - other`` over the seeds and its standard error
``sd / sqrt(seeds)``. Several files merge by table (for example ``qhpo bench --budget``'s and
``benchmarks/peers.py --budget``'s on the same seeds); a rule present in several keeps the
first file's values (Syne Tune's ``hyperband`` then gives way to Optuna's). ``--before FILE``
adds the rule of another run of the same seeds (the rule before a change, replayed with its
options) as ``RULE before``.

    qhpo bench --suite builtin --budget 20 --seeds 10 --json budget.json
    python benchmarks/paired.py budget.json [peers-budget.json] [--rule qhpo]
    qhpo bench --suite builtin --predictor svr --seeds 100 --first-seed 400 --json held-out.json
    python benchmarks/paired.py held-out.json --rule qhpo
    qhpo bench --suite builtin --budget 20 --seeds 10 --policies qhpo --policy-option qhpo:quorum=0 --json q0.json
    python benchmarks/paired.py budget.json --before q0.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def per_seed_means(docs: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """``{reading: {rule: per-seed regret averaged over the tables}}`` (reading ``"regret"``
    without a budget). Only the tables every file's rules share are read."""
    tables: dict[str, dict] = {}
    for doc in docs:
        for name, table in (doc["tables"] if "tables" in doc else {doc["table"]: doc}).items():
            merged = tables.setdefault(name, {**table, "policies": {}})
            for rule, values in table["policies"].items():
                merged["policies"].setdefault(rule, values)
    readings = next(iter(tables.values())).get("readings") or ["regret"]
    rules = set.intersection(*(set(t["policies"]) for t in tables.values()))
    out: dict[str, dict[str, np.ndarray]] = {}
    for reading in readings:
        out[reading] = {}
        for rule in sorted(rules):
            rows = []
            for table in tables.values():
                per_seed = table["policies"][rule]["per_seed"]
                if reading == "regret":
                    rows.append(np.asarray(per_seed["regret"], dtype=float) / table["spread"])
                else:
                    rows.append(np.asarray(per_seed[reading], dtype=float))
            out[reading][rule] = np.mean(rows, axis=0)
    return out


def paired(means: dict[str, np.ndarray], rule: str) -> dict[str, tuple[float, float]]:
    """``{other: (mean of rule - other over the seeds, its standard error)}``."""
    ours = means[rule]
    result = {}
    for other, theirs in means.items():
        if other == rule:
            continue
        diff = ours - theirs
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        result[other] = (float(np.mean(diff)), se)
    return result


def _renamed(doc: dict, rule: str, name: str) -> dict:
    """``doc`` with only ``rule``, called ``name``."""
    tables = doc["tables"] if "tables" in doc else {doc["table"]: doc}
    return {"tables": {t: {**table, "policies": {name: table["policies"][rule]}} for t, table in tables.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, nargs="+", help="JSON files of qhpo bench (and benchmarks/peers.py)")
    parser.add_argument("--rule", default="qhpo", help="the rule compared with every other (default qhpo)")
    parser.add_argument("--before", type=Path, default=None, help="another run's JSON: its RULE joins as 'RULE before'")
    args = parser.parse_args(argv)
    try:
        docs = [json.loads(path.read_text()) for path in args.json]
        if args.before is not None:
            docs.append(_renamed(json.loads(args.before.read_text()), args.rule, f"{args.rule} before"))
        means = per_seed_means(docs)
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as error:
        print(f"paired.py: cannot read the results ({type(error).__name__}: {error}).", file=sys.stderr)
        return 2
    for reading, by_rule in means.items():
        if args.rule not in by_rule:
            print(f"paired.py: rule {args.rule!r} is not in every table of the results.", file=sys.stderr)
            return 2
        cells = [f"{other} {d:+.4f} ± {se:.4f}" for other, (d, se) in paired(by_rule, args.rule).items()]
        label = "regret / spread" if reading == "regret" else f"at {reading}"
        print(f"{label}: {args.rule} {by_rule[args.rule].mean():.4f}; {args.rule} minus " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
