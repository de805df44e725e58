"""The suite's acceptance target, applied to the JSON of ``qhpo bench``.

``qhpo bench`` reports numbers (cost, regret, their spread over seeds); whether a rule is
good enough is a question of this benchmark layer, not of the library. The target asks of
one rule on one table (``qhpo`` by default):

- its mean regret at most ``best``'s mean regret plus ``best``'s standard error, where
  ``best`` is the one of ``median``, ``sha`` and ``hyperband`` with the lowest mean regret
  (ties: the lower cost);
- its cost at most 0.75 times ``best``'s;
- no other rule of the result with both a lower mean regret and a lower cost.

Run it on what ``qhpo bench`` wrote (a suite, one table, or several files):

    qhpo bench --suite builtin --seeds 20 --json suite.json
    python benchmarks/suite_target.py suite.json [--rule qhpo-stop] [--json target.json]

It prints, per table, pass or fail with the reason, and the number of tables on which the
rule meets the target. ``frontier.py``, ``headroom.py`` and ``configuration_rule.py`` apply
the same function to their variants.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

#: The baselines among which the target's ``best`` is chosen, and the rule judged against them.
TARGET_BASELINES = ("median", "sha", "hyperband")
TARGET_RULE = "qhpo"
#: The target's cost ratio: the judged rule may spend at most this share of ``best``'s epochs.
TARGET_COST_RATIO = 0.75


def check_table(result: dict, rule: str = TARGET_RULE) -> dict | None:
    """Whether ``rule`` meets the target on one table's result of ``qhpo bench``.

    Returns ``{"rule", "best", "pass", "why"}``, or None when the result lacks ``rule`` or
    one of :data:`TARGET_BASELINES`.
    """
    policies = result["policies"]
    if rule not in policies or not all(b in policies for b in TARGET_BASELINES):
        return None
    best = min(TARGET_BASELINES, key=lambda b: (policies[b]["regret_mean"], policies[b]["cost_fraction_mean"]))
    ours, theirs = policies[rule], policies[best]
    bar = theirs["regret_mean"] + theirs["regret_sd"] / math.sqrt(result["seeds"])
    reasons = []
    if ours["regret_mean"] > bar:
        reasons.append(
            f"regret {ours['regret_mean']:.4g} above {best}'s {theirs['regret_mean']:.4g} + "
            f"{bar - theirs['regret_mean']:.2g} (its standard error)"
        )
    if ours["cost_fraction_mean"] > TARGET_COST_RATIO * theirs["cost_fraction_mean"]:
        reasons.append(
            f"cost {ours['cost_fraction_mean']:.1%} above {TARGET_COST_RATIO:g} x {best}'s "
            f"{theirs['cost_fraction_mean']:.1%}"
        )
    reasons += [f"{name} has both lower regret and lower cost" for name in _dominating(policies, rule)]
    why = "; ".join(reasons) if reasons else _within(ours, theirs, best)
    return {"rule": rule, "best": best, "pass": not reasons, "why": why}


def _dominating(policies: dict, rule: str) -> list[str]:
    ours = policies[rule]
    return [
        name
        for name, other in policies.items()
        if name != rule
        and other["regret_mean"] < ours["regret_mean"]
        and other["cost_fraction_mean"] < ours["cost_fraction_mean"]
    ]


def _within(ours: dict, theirs: dict, best: str) -> str:
    ratio = ours["cost_fraction_mean"] / max(theirs["cost_fraction_mean"], 1e-12)
    return (
        f"regret {ours['regret_mean']:.4g} within {best}'s {theirs['regret_mean']:.4g} + standard error at "
        f"{ratio:.2f} x its cost"
    )


def table_results(doc: dict) -> dict[str, dict]:
    """The per-table results of a ``qhpo bench --json`` document: a suite's tables, or the one table."""
    if "tables" in doc:
        return dict(doc["tables"])
    if "policies" in doc and "table" in doc:
        return {Path(str(doc["table"])).stem: doc}
    raise ValueError("it is neither a `qhpo bench --json` table result nor a suite result")


def check_suite(doc: dict, rule: str = TARGET_RULE) -> dict:
    """The target on every table of ``doc``: ``{"rule", "tables": {stem: check}, "passed", "failed"}``.

    Tables without ``rule`` or a baseline have the check None and count in neither list.
    """
    checks = {stem: check_table(result, rule) for stem, result in table_results(doc).items()}
    return {
        "rule": rule,
        "tables": checks,
        "passed": sorted(stem for stem, c in checks.items() if c is not None and c["pass"]),
        "failed": sorted(stem for stem, c in checks.items() if c is not None and not c["pass"]),
    }


def format_suite(check: dict) -> str:
    """The printed report: one line per table, then the tally."""
    width = max([len(stem) for stem in check["tables"]] + [5]) + 2
    lines = [f"target for {check['rule']} (against the best of {', '.join(TARGET_BASELINES)}):"]
    for stem, c in check["tables"].items():
        mark = (
            "-: the result lacks the rule or a baseline"
            if c is None
            else (f"{'pass' if c['pass'] else 'fail'} against {c['best']}: {c['why']}")
        )
        lines.append(f"{stem:<{width}}{mark}")
    judged = len(check["passed"]) + len(check["failed"])
    lines.append(f"target met on {len(check['passed'])} of {judged} tables")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON written by `qhpo bench ... --json`")
    parser.add_argument("--rule", default=TARGET_RULE, help=f"the rule judged (default {TARGET_RULE})")
    parser.add_argument("--json", type=Path, help="write the checks here")
    args = parser.parse_args(argv)
    checks = []
    for path in args.results:
        try:
            doc = json.loads(path.read_text())
            checks.append(check_suite(doc, args.rule))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            why = f"it lacks the key {exc}" if isinstance(exc, KeyError) else str(exc)
            print(f"error: cannot read {path} as a result of `qhpo bench --json`: {why}", file=sys.stderr)
            return 2
    for check in checks:
        print(format_suite(check))
    if args.json:
        args.json.write_text(json.dumps(checks[0] if len(checks) == 1 else checks, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
