"""Policies by name: what ``qhpo run --policy`` and ``qhpo bench --policies`` accept."""

from __future__ import annotations

from typing import Any

from qhpo._rules import RuleKind, rule_names
from qhpo.policies._baker import BakerEarlyStopping
from qhpo.policies._base import StoppingPolicy
from qhpo.policies._none import NoStopping
from qhpo.policies._one_epoch import OneEpoch
from qhpo.policies._poster import DecisionPointPolicy
from qhpo.policies._predictive_halving import PredictiveHalving, PredictiveHalvingStop
from qhpo.predictors import ORACLE, ORACLE_FINAL, ORACLE_REFUSAL

_POLICIES = {
    "none": NoStopping,
    "one-epoch": OneEpoch,
    "baker": BakerEarlyStopping,
    "poster": DecisionPointPolicy,
    "qhpo": PredictiveHalving,
    "qhpo-stop": PredictiveHalvingStop,
}

#: Names :func:`make_policy` accepts (the rules of kind ``policy`` in :data:`qhpo._rules.RULES`);
#: ``"qhpo"`` is the default predictive policy.
POLICY_NAMES: tuple[str, ...] = rule_names(RuleKind.POLICY)
assert set(POLICY_NAMES) == set(_POLICIES), "every policy rule needs a class, and every class a rule"


def policy_class(name: str) -> type[StoppingPolicy]:
    """The class :func:`make_policy` builds for ``name`` (its keyword arguments are the policy's options).

    Example:
        >>> policy_class("qhpo").__name__
        'PredictiveHalving'
    """
    if name not in _POLICIES:
        raise ValueError(f"name must be one of {', '.join(POLICY_NAMES)}, got {name!r}")
    return _POLICIES[name]


def make_policy(
    name: str,
    *,
    max_epochs: int,
    mode: str = "max",
    predictor: Any = "svr",
    sampler: Any = None,
    random_state: int | None = None,
    **options: Any,
) -> StoppingPolicy:
    """Build the stopping policy called ``name``.

    Example:
        >>> make_policy("qhpo", max_epochs=200, predictor="svr", random_state=0).name
        'qhpo'

    Args:
        name: One of :data:`POLICY_NAMES`.
        max_epochs: Epochs of a trial that is never stopped.
        mode: ``"max"`` or ``"min"``.
        predictor: ``"svr"``, ``"qsvr"``, ``"qsvr-ensemble"`` or an estimator object
            (ignored by ``"none"``).
        sampler: ``dimod.Sampler`` or sampler name for the annealer predictors.
        random_state: Seed of the predictors.
        **options: Keyword arguments of the policy class (for example ``keep_fraction``
            for ``"poster"``, ``delta`` for ``"qhpo"``, ``background=True`` to fit
            predictors in a worker thread).
    """
    if name == "swift-hyperband":
        raise ValueError(
            "policy 'swift-hyperband' creates its own configurations in brackets and cannot "
            "decide for trials chosen elsewhere; run it with qhpo.replay.replay_swift_hyperband "
            "or `qhpo bench --policies swift-hyperband`"
        )
    if name not in _POLICIES:
        raise ValueError(f"name must be one of {', '.join(POLICY_NAMES)}, got {name!r}")
    if isinstance(predictor, str) and predictor in (ORACLE, ORACLE_FINAL):
        raise ValueError(ORACLE_REFUSAL)
    cls = _POLICIES[name]
    if cls is NoStopping:
        return NoStopping(max_epochs=max_epochs, mode=mode)
    if cls is OneEpoch:  # reads no prediction and waits for no completed trial
        dropped = ("background", "service", "min_completed")
        return OneEpoch(max_epochs=max_epochs, mode=mode, **{k: v for k, v in options.items() if k not in dropped})
    return cls(
        max_epochs=max_epochs, mode=mode, predictor=predictor, sampler=sampler, random_state=random_state, **options
    )
