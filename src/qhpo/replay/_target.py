"""The benchmark's acceptance target: the rule judged, the baselines it is judged against, the
cost ratio it must reach, and the verdict on one table's result."""

from __future__ import annotations

import math

#: The baselines among which the target's ``best`` is chosen, and the rule judged against them.
TARGET_BASELINES = ("median", "sha", "hyperband")
TARGET_RULE = "qhpo"
#: The target's cost ratio: the judged rule may spend at most this share of ``best``'s epochs.
TARGET_COST_RATIO = 0.75


def verdict(result: dict, rule: str = TARGET_RULE) -> dict | None:
    """Whether ``rule`` meets the target on one table's result (None without the rules it needs).

    With ``best`` the one of :data:`TARGET_BASELINES` with the lowest mean regret (ties:
    lower cost), the rule passes when its mean regret is at most ``best``'s mean regret plus
    ``best``'s standard error (``regret_sd / sqrt(seeds)``), its cost is at most
    :data:`TARGET_COST_RATIO` times ``best``'s, and no other rule has both a lower mean
    regret and a lower cost.
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
    for name, other in policies.items():
        if (
            name != rule
            and other["regret_mean"] < ours["regret_mean"]
            and other["cost_fraction_mean"] < ours["cost_fraction_mean"]
        ):
            reasons.append(f"{name} has both lower regret and lower cost")
    why = (
        "; ".join(reasons)
        if reasons
        else (
            f"regret {ours['regret_mean']:.4g} within {best}'s {theirs['regret_mean']:.4g} + standard error at "
            f"{ours['cost_fraction_mean'] / max(theirs['cost_fraction_mean'], 1e-12):.2f} x its cost"
        )
    )
    return {"rule": rule, "best": best, "pass": not reasons, "why": why}
