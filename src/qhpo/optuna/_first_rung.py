"""The first epoch at which a stopping rule may stop a trial: what a budget must leave room for.

A search under a budget (``qhpo run --budget``, ``qhpo bench --budget``) starts a new
configuration only when the epochs left hold its first rung; fewer would buy a trial that
no rule could judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qhpo.optuna._baselines import OPTUNA_PRUNERS, pruner_defaults
from qhpo.policies import DecisionEpochs

#: Options of ``qhpo run`` that configure the adapter, not the policy.
_ADAPTER_OPTIONS = ("resume",)


def first_rung(name: str, epochs: int, options: Mapping[str, Any] | None = None, policy: Any = None) -> int:
    """The first epoch at which rule ``name`` may stop a trial of ``epochs`` epochs.

    For an Optuna pruner: ``n_warmup_steps`` of ``median``, ``min_resource`` of ``sha`` and
    ``hyperband``, 1 for ``conformal``; for a qhpo policy (``policy``, or the one ``name`` and
    ``options`` build): its first decision epoch below ``epochs``, 1 when it may decide at
    any epoch, and ``epochs`` when it never decides (``none``).

    Example:
        >>> first_rung("sha", 200), first_rung("median", 200), first_rung("none", 200), first_rung("qhpo", 200)
        (10, 20, 200, 10)
    """
    options = {k: v for k, v in dict(options or {}).items() if k not in _ADAPTER_OPTIONS}
    if name in OPTUNA_PRUNERS:
        kwargs = dict(pruner_defaults(name, epochs), **options)
        if name == "median":
            return max(1, int(kwargs["n_warmup_steps"]))
        if name in ("sha", "hyperband"):
            return max(1, int(kwargs["min_resource"]))
        return 1
    built = policy is None
    if built:
        from qhpo.policies import make_policy

        policy = make_policy(name, max_epochs=epochs, **options)
    try:
        return DecisionEpochs.of(policy).first(below=int(epochs))
    finally:
        service = getattr(policy, "service", None) if built else None
        if service is not None:
            service.close()
