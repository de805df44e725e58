"""Every stopping rule qhpo knows, by name, with its kind: the one list the commands read.

A rule is one of three kinds:

* ``policy``: a :class:`qhpo.policies.StoppingPolicy` built by
  :func:`qhpo.policies.make_policy`; it runs in the replay, under Optuna
  (:class:`qhpo.optuna.PredictivePruner`) and under Ray Tune;
* ``optuna``: an Optuna pruner (Optuna's own, or one written for Optuna) that runs in a
  real Optuna study, in the replay as in ``qhpo run``;
* ``brackets``: a search that creates its own configurations in Hyperband brackets
  (Swift-Hyperband); it cannot decide for trials chosen elsewhere, so only the replay runs it.

This module only names the rules; the packages that build them import it, never the reverse.

Example:
    >>> rule_names(RuleKind.OPTUNA)
    ('median', 'sha', 'hyperband', 'conformal')
    >>> rule("baker").kind.value
    'policy'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RuleKind(str, enum.Enum):
    POLICY = "policy"
    OPTUNA = "optuna"
    BRACKETS = "brackets"


@dataclass(frozen=True)
class Rule:
    """A stopping rule: its name, its kind, where it comes from, and whether it reads
    qhpo's predictor (``--predictor`` and ``--annealer`` choose it)."""

    name: str
    kind: RuleKind
    source: str
    predictive: bool = False


#: Every rule, in the order results list them.
RULES: tuple[Rule, ...] = (
    Rule("none", RuleKind.POLICY, "no stopping: every trial trains to the end"),
    Rule("median", RuleKind.OPTUNA, "optuna.pruners.MedianPruner"),
    Rule("sha", RuleKind.OPTUNA, "optuna.pruners.SuccessiveHalvingPruner (asynchronous successive halving)"),
    Rule("hyperband", RuleKind.OPTUNA, "optuna.pruners.HyperbandPruner"),
    Rule(
        "one-epoch",
        RuleKind.POLICY,
        "one epoch for every configuration, the best tenth finish (Egele et al. 2023, arXiv 2307.15422)",
    ),
    Rule("conformal", RuleKind.OPTUNA, "surestop.ConformalPruner: conformal kill rule (surestop package, MIT)"),
    Rule("baker", RuleKind.POLICY, "Baker, Gupta, Raskar, Naik, ICLR workshop 2018 (arXiv 1705.10823)"),
    Rule("poster", RuleKind.POLICY, "one decision at mid-training (the hybrid quantum-classical HPO poster)", True),
    Rule("swift-hyperband", RuleKind.BRACKETS, "Swift-Hyperband (Wulff et al. 2024)", True),
    Rule("qhpo", RuleKind.POLICY, "qhpo's default: successive halving on predicted values, pausing and resuming", True),
    Rule("qhpo-stop", RuleKind.POLICY, "qhpo's default with resumption off: the trials it does not keep stop", True),
)


def rule_names(*kinds: RuleKind) -> tuple[str, ...]:
    """Names of the rules of ``kinds`` (every rule when none is given), in listing order."""
    return tuple(r.name for r in RULES if not kinds or r.kind in kinds)


def predictive_rule_names() -> tuple[str, ...]:
    """Names of the rules that read qhpo's predictor, in listing order.

    Example:
        >>> predictive_rule_names()
        ('poster', 'swift-hyperband', 'qhpo', 'qhpo-stop')
    """
    return tuple(r.name for r in RULES if r.predictive)


def rule(name: str) -> Rule:
    """The rule called ``name``."""
    for r in RULES:
        if r.name == name:
            return r
    raise ValueError(f"name must be one of {', '.join(rule_names())}, got {name!r}")
