"""Freeze-thaw for plain Optuna objectives: which paused trials to resume now, and how.

Optuna cannot resume a pruned trial, so a resumption is a new trial: the same parameters,
``qhpo.resume_of`` naming the paused trial and ``qhpo.checkpoint`` its checkpoint key. The
objective loads that checkpoint, reports the epochs it recorded again and trains on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from qhpo.optuna._trial_views import CHECKPOINT_ATTR, RESUME_ATTR, RESUME_OF_ATTR, UNRANKED_ATTR
from qhpo.policies import Resumption


def checkpoint_key(trial: FrozenTrial | optuna.Trial) -> Any:
    """The key under which ``trial`` keeps its checkpoint: its ``qhpo.checkpoint`` user
    attribute (shared with every trial that continues it), else its number."""
    return trial.user_attrs.get(CHECKPOINT_ATTR, trial.number)


@dataclass(frozen=True)
class ResumableTrial:
    """A paused trial that the policy resumes now.

    Attributes:
        number: The paused trial's number.
        params: Its parameters (the resumption trial gets the same ones).
        checkpoint: Its checkpoint key (:func:`checkpoint_key`); the resumption loads that
            checkpoint and goes on saving under the same key.
        epoch: Epochs it trained before the pause; the resumption trains from ``epoch + 1``.
        resumption: The policy's :class:`~qhpo.policies.Resumption`, with what it rested on.
        policy: The name of the policy that resumes it.
        unranked: The decision epochs at which it went on unranked (carried over to the
            resumption, which does not decide on the epochs it reports again).
    """

    number: int
    params: dict[str, Any]
    checkpoint: Any
    epoch: int
    resumption: Resumption
    policy: str = ""
    unranked: tuple[int, ...] = ()

    @property
    def user_attrs(self) -> dict[str, Any]:
        """The user attributes of the trial that resumes it."""
        attrs = {
            RESUME_OF_ATTR: self.number,
            CHECKPOINT_ATTR: self.checkpoint,
            RESUME_ATTR: self.resumption.record(self.policy),
        }
        if self.unranked:
            attrs[UNRANKED_ATTR] = list(self.unranked)
        return attrs

    def enqueue(self, study: optuna.Study) -> None:
        """Enqueue the resumption: the next trial ``study`` starts continues the paused one.

        From then on the paused trial is no longer listed by :func:`resumable_trials`, and
        the views of the pruner see the configuration once, through the new trial.
        """
        study.enqueue_trial(dict(self.params), user_attrs=self.user_attrs, skip_if_exists=False)


def resumable_trials(
    study: optuna.Study,
    pruner: optuna.pruners.BasePruner | None = None,
    *,
    limit: int = 1,
    can_resume: Callable[[FrozenTrial], bool] | None = None,
) -> list[ResumableTrial]:
    """The paused trials of ``study`` that the pruner's policy resumes now, best first.

    Call it when a worker falls free, before starting a new configuration (and, when no new
    configuration is left, until it lists nothing and no trial runs), then
    :meth:`ResumableTrial.enqueue` each one: the next trials of ``study.optimize`` are the
    resumptions. Paused trials that are never resumed count as stopped.

    Example:
        >>> import optuna
        >>> from qhpo.optuna import PredictivePruner, resumable_trials
        >>> pruner = PredictivePruner("qhpo", "svr", max_epochs=20)
        >>> study = optuna.create_study(direction="maximize", pruner=pruner)
        >>> resumable_trials(study)  # nothing paused yet
        []
        >>> study.optimize(objective, n_trials=10)  # doctest: +SKIP
        >>> for paused in resumable_trials(study, limit=2):  # doctest: +SKIP
        ...     paused.enqueue(study)
        >>> study.optimize(objective, n_trials=2)  # doctest: +SKIP

    See ``examples/resume_paused_trials.py`` for an objective that saves, loads and reports
    checkpoints.

    Args:
        study: The study (any storage).
        pruner: A :class:`~qhpo.optuna.PredictivePruner`; None takes ``study.pruner``.
        limit: The most trials to list (free workers).
        can_resume: Optional filter: a paused trial for which it returns False (say, its
            checkpoint is gone) is shown to the policy as stopped.

    Returns:
        At most ``limit`` :class:`ResumableTrial` records; none when the pruner is not a
        :class:`~qhpo.optuna.PredictivePruner` or its policy never resumes.

    Several processes on one study should call this and ``enqueue`` under one lock (as
    ``qhpo run`` does), or two of them may resume the same trial.
    """
    from qhpo.optuna._pruner import PredictivePruner

    pruner = study.pruner if pruner is None else pruner
    if not isinstance(pruner, PredictivePruner):
        return []
    chosen = pruner.promote(study, limit=limit, can_resume=can_resume)
    policy = pruner.policy_
    name = policy.label if policy is not None else ""
    return [
        ResumableTrial(
            number=trial.number,
            params=dict(trial.params),
            checkpoint=checkpoint_key(trial),
            epoch=int(resumption.epoch),
            resumption=resumption,
            policy=name,
            unranked=tuple(sorted(int(e) for e in trial.user_attrs.get(UNRANKED_ATTR) or ())),
        )
        for trial, resumption in chosen
    ]
