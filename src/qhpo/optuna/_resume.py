"""Freeze-thaw for plain Optuna objectives: which paused trials to resume now, and how.

Optuna cannot resume a pruned trial, so a resumption is a new trial: the same parameters,
``qhpo.resume_of`` naming the paused trial and ``qhpo.checkpoint`` its checkpoint key. The
objective loads that checkpoint, reports the epochs it recorded again and trains on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from qhpo._optuna_schema import CHECKPOINT_ATTR, RESUME_ATTR, RESUME_OF_ATTR, UNRANKED_ATTR
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

    @classmethod
    def of(cls, trial: FrozenTrial, resumption: Resumption, policy: str) -> ResumableTrial:
        """The record of paused ``trial`` that ``policy`` resumes with ``resumption``."""
        return cls(
            number=trial.number,
            params=dict(trial.params),
            checkpoint=checkpoint_key(trial),
            epoch=int(resumption.epoch),
            resumption=resumption,
            policy=policy,
            unranked=tuple(sorted(int(e) for e in trial.user_attrs.get(UNRANKED_ATTR) or ())),
        )

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
    more_trials: bool = False,
    budget_left: int | None = None,
) -> list[ResumableTrial]:
    """The paused trials of ``study`` that the pruner's policy resumes now, best first.

    Call it when a worker falls free, before starting a new configuration (and, when no new
    configuration is left, until it lists nothing and no trial runs), then
    :meth:`ResumableTrial.enqueue` each one: the next trials of ``study.optimize`` are the
    resumptions. Paused trials that are never resumed count as stopped.

    Example:
        >>> import optuna
        >>> from qhpo.optuna import PredictivePruner, resumable_trials
        >>> pruner = PredictivePruner("qhpo", "svr", freeze_thaw=True, max_epochs=20)
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
        more_trials: Whether you start a new configuration when this lists nothing. While
            True, a rung of ``qhpo`` that fewer than its ``quorum`` trials have reached
            keeps its paused trials waiting for their peers; pass False (the default) once
            no new configuration follows, and they are ranked with the peers they have.
        budget_left: Epochs left of the search's budget (every epoch any trial trains
            counts), or None without one. Near the end of a budget ``qhpo`` resumes its best
            paused trial *to finish* (``endgame_slack`` of :class:`qhpo.policies.PredictiveHalving`):
            the resumption's ``qhpo.resume`` record holds ``"finishing": true`` and the
            pruner lets that trial train to its end unjudged.

    Returns:
        At most ``limit`` :class:`ResumableTrial` records; none when the pruner is not a
        :class:`~qhpo.optuna.PredictivePruner` or its policy never resumes (a pruner built
        without ``freeze_thaw=True``).

    Several processes on one study should call this and ``enqueue`` under one lock (as
    ``qhpo run`` does), or two of them may resume the same trial.
    """
    from qhpo.optuna._pruner import PredictivePruner

    pruner = study.pruner if pruner is None else pruner
    if not isinstance(pruner, PredictivePruner):
        return []
    chosen = pruner.promote(study, limit=limit, can_resume=can_resume, more_trials=more_trials, budget_left=budget_left)
    policy = pruner.policy_
    name = policy.label if policy is not None else ""
    return [ResumableTrial.of(trial, resumption, name) for trial, resumption in chosen]


class ResumePausedTrials:
    """An Optuna callback that resumes paused trials: freeze-thaw in ``study.optimize``.

    After each trial ends (a worker falls free) it asks the study's
    :class:`~qhpo.optuna.PredictivePruner` which paused trials its policy resumes now
    (:func:`resumable_trials`, at most one per trial that ended) and enqueues the
    resumption, so the next trial ``study.optimize`` starts continues that trial from its
    checkpoint (the objective loads it: :class:`TrialCheckpoint`). This is when the replay
    asks its policy, so with ``PredictivePruner("qhpo", freeze_thaw=True)`` the study runs
    the rule the replay measured as ``qhpo``.

    With ``n_configurations`` the callback also tells the policy whether a new configuration
    follows (``more_trials`` of :func:`resumable_trials`: while fewer than that many have
    started, a rung of ``qhpo`` waits for its ``quorum`` as in the replay; without it none is
    assumed to follow, and each trial that pauses at a thinly populated rung is ranked at
    once, as plain asynchronous halving would), and ends the search the replay's way: once
    that many configurations have finished (a paused and resumed one counts once), no new
    one starts; the paused trials the policy still resumes are run (after the predictor's
    pending refit has landed) and then ``study.stop()`` is called. Pass ``n_trials=None``
    to ``study.optimize`` then: resumptions are trials too. Without it, ``n_trials`` counts
    resumptions and new configurations alike.

    Example:
        >>> import optuna
        >>> from qhpo.optuna import PredictivePruner, ResumePausedTrials
        >>> study = optuna.create_study(direction="maximize",
        ...                             pruner=PredictivePruner("qhpo", freeze_thaw=True, max_epochs=20))
        >>> study.optimize(objective, callbacks=[ResumePausedTrials(n_configurations=40)])  # doctest: +SKIP

    Args:
        n_configurations: Configurations to finish before the search ends; None: the
            callback only enqueues resumptions.
        can_resume: Optional filter (see :func:`resumable_trials`), e.g. whether the
            paused trial's checkpoint still exists.
        settle_seconds: At the end of the search, how long to wait for the predictor's
            pending refit before the last question (0: do not wait).

    Several processes on one study should not share this callback's decisions: each
    process's callback holds its own lock (``qhpo run`` locks across processes).
    """

    def __init__(
        self,
        n_configurations: int | None = None,
        *,
        can_resume: Callable[[FrozenTrial], bool] | None = None,
        settle_seconds: float = 60.0,
    ) -> None:
        from qhpo._checks import check_int

        self.n_configurations = (
            None if n_configurations is None else check_int("n_configurations", n_configurations, least=1)
        )
        if not float(settle_seconds) >= 0:
            raise ValueError(f"settle_seconds must be at least 0, got {settle_seconds!r}")
        self.can_resume = can_resume
        self.settle_seconds = float(settle_seconds)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from optuna.trial import TrialState

        from qhpo.optuna._trial_views import configuration_counts

        with self._lock:
            trials = study.get_trials(deepcopy=False)
            if any(t.state == TrialState.WAITING for t in trials):
                return  # a resumption (or an enqueued trial) waits to start: it goes first
            finished, running = configuration_counts(trials)
            more = self.n_configurations is not None and finished + running < self.n_configurations
            resumable = resumable_trials(study, limit=1, can_resume=self.can_resume, more_trials=more)
            if resumable:
                resumable[0].enqueue(study)
                return
            if self.n_configurations is None or more:
                return
            if running == 0 and self.settle_seconds and settle_predictor(study, self.settle_seconds):
                resumable = resumable_trials(study, limit=1, can_resume=self.can_resume)
                if resumable:
                    resumable[0].enqueue(study)
                    return
            study.stop()  # running trials end in the other threads; their callbacks may still resume


def settle_predictor(study: optuna.Study, timeout: float = 120.0) -> bool:
    """Wait for the pruner's pending predictor fits; True when the predictor may have changed.

    A search that finds nothing to resume while nothing runs asks once more after this: a
    fit that lands may rank a paused trial among the best.
    """
    policy = getattr(study.pruner, "policy_", None)
    service = None if policy is None else policy.prediction_service
    if service is None:
        return False
    version = service.version
    service.wait(timeout)
    return service.version != version


class TrialCheckpoint:
    """The checkpoint hook of an objective under freeze-thaw: where a trial saves, and what a
    resumption loads.

    A trial and every trial that continues it share one checkpoint key
    (:func:`checkpoint_key`), stored as the user attribute ``qhpo.checkpoint``; the
    checkpoint file is ``folder / f"trial-{key}{suffix}"``. The objective

    1. builds ``TrialCheckpoint(trial, folder)``;
    2. when :attr:`resumes`, loads :attr:`path` (the paused trial's last save), reports the
       epochs it recorded again with :meth:`report_again` and trains on from
       ``len(curve) + 1``;
    3. saves to :attr:`path` after every epoch it reports (a pause keeps the last save);
    4. when ``trial.should_prune()`` is True, calls :meth:`pruned` (which removes the file
       unless the pruner paused the trial) and raises ``optuna.TrialPruned``.

    ``examples/resume_paused_trials.py`` is a complete objective with PyTorch.

    Args:
        trial: The trial the objective runs.
        folder: The folder of the checkpoints (made if missing).
        suffix: The file name's ending.
    """

    def __init__(self, trial: optuna.Trial, folder: str | os.PathLike, suffix: str = ".pt") -> None:
        self.trial = trial
        self.key = checkpoint_key(trial)
        trial.set_user_attr(CHECKPOINT_ATTR, self.key)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"trial-{self.key}{suffix}"

    @property
    def resumes(self) -> bool:
        """Whether the trial continues a paused trial (load :attr:`path` first)."""
        return self.trial.user_attrs.get(RESUME_OF_ATTR) is not None

    def report_again(self, curve) -> None:
        """Report the recorded values ``curve[e - 1]`` at steps ``e = 1, 2, ...`` again."""
        for epoch, value in enumerate(curve, start=1):
            self.trial.report(float(value), epoch)

    def pruned(self) -> None:
        """After ``should_prune()`` said True: keep the file of a paused trial, remove a stopped one's."""
        pruner = self.trial.study.pruner
        paused = getattr(pruner, "paused", None)
        if paused is None or not paused(self.trial):
            self.path.unlink(missing_ok=True)
