"""Options of a stopping rule given on the command line (``--policy-option NAME=VALUE``).

A value is read as ``true``/``false``, a whole number, a number, or else kept as text.
The names a rule accepts are the keyword arguments of its class, less those the commands
set themselves (the budget, the metric's direction, the predictor and its annealer, the
seed, the background fitting).

Example:
    >>> parse_policy_option("reduction_factor=3")
    (None, 'reduction_factor', 3)
    >>> parse_policy_option("sha:min_resource=5")
    ('sha', 'min_resource', 5)
    >>> check_policy_options("qhpo", {"reduction_factor": 3}, epochs=50)
    >>> "min_resource" in option_names("qhpo")
    True
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from typing import Any

from qhpo._errors import QhpoError
from qhpo._rules import RuleKind, rule, rule_names

#: Keyword arguments the commands set themselves: not options a user passes.
SET_BY_THE_COMMAND = frozenset(
    {"max_epochs", "max_resource", "mode", "predictor", "sampler", "random_state", "background", "service", "explain"}
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: The rules whose first rung differs in a search bounded by a budget (``qhpo run --budget``,
#: ``qhpo bench --budget``), as the share ``1/k`` of the epochs ``E``: ``min_resource =
#: max(1, round(E / k))`` instead of ``E / 20``: saved epochs buy more configurations, and an
#: earlier first rung spends fewer on each. Chosen on the design seeds 100-199 of the built-in
#: tables at 20 full trainings (``benchmarks/budget_policy.py``; docs/replay.md, "Budget mode").
BUDGET_FIRST_RUNG_SHARE: dict[str, int] = {"qhpo": 40, "qhpo-stop": 40}

#: Under a budget ``qhpo``'s rungs up to 30 % of training wait for two trials, and the later
#: rungs rank each arrival at once (``quorum = 2, quorum_span = 0.3``, against four trials at
#: every rung without a budget): a search read at any moment of its budget needs finished
#: trials early, and a wait at every rung holds the first completions back (to about 40 % of
#: the epochs with four trials), while a wait at the cheap first rungs still ranks their
#: early arrivals. Chosen on the design seeds 100-199 (``benchmarks/budget_policy.py``;
#: docs/replay.md, "Budget mode").
#: The rung agreement (``agreement``, a larger share at a rung whose ranking the next rung
#: contradicts) is off under a budget: on the design seeds it tied the budget's rule at every
#: reading (docs/policies.md, "Rungs that the next rung contradicts").
BUDGET_QUORUM: dict[str, dict[str, Any]] = {"qhpo": {"quorum": 2, "quorum_span": 0.3, "agreement": "off"}}


def budget_defaults(name: str, epochs: int) -> dict[str, Any]:
    """The options rule ``name`` takes by default under a budget, for trials of ``epochs`` epochs
    (an option the user gives replaces its default).

    Example:
        >>> budget_defaults("qhpo", 200), budget_defaults("qhpo-stop", 8), budget_defaults("sha", 200)
        ({'min_resource': 5, 'quorum': 2, 'quorum_span': 0.3, 'agreement': 'off'}, {'min_resource': 1}, {})
    """
    share = BUDGET_FIRST_RUNG_SHARE.get(name)
    options: dict[str, Any] = {} if share is None else {"min_resource": max(1, round(int(epochs) / share))}
    options.update(BUDGET_QUORUM.get(name, {}))
    return options


def parse_option_value(text: str) -> bool | int | float | str:
    """``true``/``false`` (any case), a whole number, a finite number, or the text itself."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def parse_policy_option(text: str) -> tuple[str | None, str, Any]:
    """``[RULE:]NAME=VALUE`` as ``(rule or None, name, value)``; one sentence when malformed."""
    head, sep, value = text.partition("=")
    rule_name, colon, name = head.rpartition(":")
    name = name.strip()
    if not sep or not _NAME.match(name) or not value.strip():
        raise QhpoError(
            f"--policy-option {text!r} is not NAME=VALUE (or RULE:NAME=VALUE), for example reduction_factor=3."
        )
    return (rule_name.strip() or None) if colon else None, name, parse_option_value(value)


def _policy_class(name: str) -> type:
    from qhpo.policies import policy_class

    return policy_class(name)


def _optuna_class(name: str) -> type:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner
    from surestop import ConformalPruner

    return ConformalPruner


def _keywords(cls: type) -> list[str]:
    """The named keyword arguments of ``cls``: of the first class in its MRO that names any."""
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = [
            p
            for p in inspect.signature(klass.__init__).parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if params:
            return [p.name for p in params]
    return []


def option_names(name: str) -> tuple[str, ...]:
    """The options rule ``name`` accepts on the command line (none for ``none`` and Swift-Hyperband)."""
    kind = rule(name).kind
    if kind == RuleKind.POLICY:
        cls = _policy_class(name)
        names = [] if name == "none" else _keywords(cls)
        if name == "qhpo-stop":
            names = [n for n in names if n != "resume"]  # qhpo-stop never resumes: that is the rule
    elif kind == RuleKind.OPTUNA:
        names = _keywords(_optuna_class(name)) + (["percentile"] if name == "median" else [])
    else:
        names = []
    return tuple(sorted(n for n in dict.fromkeys(names) if n not in SET_BY_THE_COMMAND))


def check_policy_options(name: str, options: Mapping[str, Any], *, epochs: int) -> None:
    """Raise :class:`QhpoError` (one sentence) unless rule ``name`` accepts ``options`` for a
    budget of ``epochs`` epochs; the rule is built once to check the values."""
    if not options:
        return
    if name not in rule_names():
        raise QhpoError(f"--policy-option names the unknown rule {name!r}; choose from {', '.join(rule_names())}.")
    allowed = option_names(name)
    if not allowed:
        raise QhpoError(f"rule {name!r} takes no --policy-option.")
    for option in options:
        if option not in allowed:
            raise QhpoError(f"rule {name!r} has no option {option!r}; its options are {', '.join(allowed)}.")
    try:
        if rule(name).kind == RuleKind.POLICY:
            from qhpo.policies import make_policy

            make_policy(name, max_epochs=int(epochs), predictor="svr", **dict(options))
        else:
            from qhpo.optuna import optuna_pruner

            optuna_pruner(name, int(epochs), **dict(options))
    except (TypeError, ValueError) as error:
        shown = ", ".join(f"{k}={v}" for k, v in options.items())
        raise QhpoError(f"rule {name!r} refuses {shown} for {epochs} epochs: {str(error).rstrip('.')}.") from None
