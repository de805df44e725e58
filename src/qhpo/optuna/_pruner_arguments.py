"""What a :class:`~qhpo.optuna.PredictivePruner` is built from: its arguments, checked, and the rule they name."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.study import StudyDirection

from qhpo.policies import StoppingPolicy
from qhpo.predictors import MODEL_NAMES, ORACLE, ORACLE_FINAL, ORACLE_REFUSAL

#: The constructor's arguments: what a pickled pruner keeps.
ARGUMENTS = ("policy", "predictor", "sampler", "max_epochs", "random_state", "policy_options", "freeze_thaw")
#: The rule a policy name runs without freeze-thaw (the same rule that stops what it does not keep).
_WITHOUT_FREEZE_THAW = {"qhpo": "qhpo-stop"}


def can_freeze_thaw(policy: str) -> bool:
    """Whether the policy called ``policy`` can pause trials and resume them (freeze-thaw).

    Example:
        >>> can_freeze_thaw("qhpo"), can_freeze_thaw("qhpo-stop"), can_freeze_thaw("poster")
        (True, False, False)
    """
    from qhpo.policies import policy_class

    return "resume" in inspect.signature(policy_class(policy).__init__).parameters


def rule_name(policy: str | StoppingPolicy, freeze_thaw: bool) -> str:
    """The name of the rule a pruner of ``policy`` runs (``"qhpo-stop"`` for ``"qhpo"`` without freeze-thaw)."""
    if isinstance(policy, StoppingPolicy):
        return policy.label
    return policy if freeze_thaw else _WITHOUT_FREEZE_THAW.get(policy, policy)


def checked_arguments(
    policy: Any, predictor: Any, freeze_thaw: Any, policy_options: Mapping[str, Any] | None
) -> tuple[bool, dict[str, Any]]:
    """``(freeze_thaw, policy options)`` of a pruner's arguments; ``ValueError`` naming a bad one."""
    if isinstance(policy, str):
        from qhpo.policies import POLICY_NAMES

        if policy not in POLICY_NAMES:
            raise ValueError(f"policy must be one of {', '.join(POLICY_NAMES)} or a StoppingPolicy, got {policy!r}")
    elif not isinstance(policy, StoppingPolicy):
        raise ValueError(f"policy must be a policy name or a StoppingPolicy, got {policy!r}")
    if isinstance(predictor, str) and predictor in (ORACLE, ORACLE_FINAL):
        raise ValueError(ORACLE_REFUSAL)
    if isinstance(predictor, str) and predictor not in MODEL_NAMES:
        raise ValueError(f"predictor must be one of {', '.join(MODEL_NAMES)} or an estimator, got {predictor!r}")
    if freeze_thaw is not None and not isinstance(freeze_thaw, bool):
        raise ValueError(f"freeze_thaw must be True, False or None, got {freeze_thaw!r}")
    options = dict(policy_options or {})
    if "resume" in options:
        raise ValueError(
            f"policy_options 'resume' ({options['resume']!r}) is set by the freeze_thaw argument; "
            "pass freeze_thaw=True or False instead"
        )
    if isinstance(policy, StoppingPolicy):
        if freeze_thaw is not None and freeze_thaw != policy.resumes:
            raise ValueError(
                f"freeze_thaw={freeze_thaw} disagrees with the policy object, whose resumes is {policy.resumes}"
            )
        return policy.resumes, options
    freeze_thaw = bool(freeze_thaw)
    if freeze_thaw and not can_freeze_thaw(policy):
        raise ValueError(f"freeze_thaw=True needs a policy that pauses trials ('qhpo'), not {policy!r}")
    return freeze_thaw, options


def build_policy(pruner: Any, study: optuna.Study, max_epochs: int) -> StoppingPolicy:
    """The policy that ``pruner`` (built from a policy name) runs for ``study`` with the epoch budget ``max_epochs``."""
    from qhpo.policies import make_policy

    mode = "max" if study.direction == StudyDirection.MAXIMIZE else "min"
    options = {"background": True, **pruner.policy_options}
    name = pruner.rule
    if can_freeze_thaw(name):
        options["resume"] = pruner.freeze_thaw
    return make_policy(
        name,
        max_epochs=max_epochs,
        mode=mode,
        predictor=pruner.predictor,
        sampler=pruner.sampler,
        random_state=pruner.random_state,
        **options,
    )
