"""Claiming a worker's next trial in a shared study: a paused trial the policy resumes, a new
trial while the run wants more, or the word to wait or to end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from qhpo._optuna_schema import OWNER_ATTR
from qhpo.optuna import PredictivePruner, configuration_counts, resumable_trials, settle_predictor
from qhpo.policies import StoppingPolicy
from qhpo.runner._budget import BudgetTracker
from qhpo.runner._recovery import GRACE_PERIOD, owner_record, recover
from qhpo.runner._signals import signals_deferred
from qhpo.runner._storage import StorageLocation


@dataclass(frozen=True)
class Claim:
    """What :func:`claim_trial` got: a trial to train, or none.

    Attributes:
        trial: The started trial; None when every place is taken.
        done: No trial and none will come: the study holds its finished configurations and
            nothing runs that could change what the policy resumes.
    """

    trial: optuna.Trial | None = None
    done: bool = False

    @property
    def wait(self) -> bool:
        """No trial now, but a running trial may fail, pause or change what the policy resumes: ask again."""
        return self.trial is None and not self.done


def claim_trial(
    study: optuna.Study,
    location: StorageLocation,
    target: int | None,
    *,
    can_resume: Callable[[optuna.trial.FrozenTrial], bool] | None = None,
    grace_period: float = GRACE_PERIOD,
    budget: BudgetTracker | None = None,
) -> Claim:
    """Start a trial of ``study``: a waiting retry, a resumption, or a new configuration.

    A waiting retry comes first. Then, when the study's pruner resumes paused trials, its
    policy's ``promote`` is asked (a resumption needs no free place: its configuration is
    counted already); its resumption is enqueued and started at once. A new configuration
    starts only while the study holds fewer than ``target`` finished and running
    configurations (None: no such limit), and under a ``budget`` only while what is left
    holds its first rung; a retry or a resumption only while something is left (the policy
    is told what is left, in epochs). All of it under the study's claim lock.

    Args:
        can_resume: Which paused trials can be resumed (their checkpoint exists); None: all.
        grace_period: Seconds without a heartbeat after which a process on another host
            takes this one's trial as dead (stored in the trial's owner record).
        budget: The search's budget (:class:`qhpo.runner._budget.BudgetTracker`), or None.

    Returns:
        A :class:`Claim`: the new trial (RUNNING, owned by this process); else ``done``
        when the study is done (``target`` finished configurations or the budget spent,
        nothing running and nothing to resume), or ``wait`` when every place is taken.
    """
    with location.claim(study.study_name), signals_deferred():
        recover(study, claimed=True)  # a worker elsewhere may have died
        trials = study.get_trials(deepcopy=False)
        finished, running = configuration_counts(trials)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        free = target is None or finished + running < target
        continues, blocked = True, False  # whether a retry or resumption fits; whether the budget stops new ones
        budget_left = None  # the epochs left, as the policy reads them
        if budget is not None:
            budget.touch(study)
            left = budget.left(study, trials)
            continues = left > 0
            blocked = not (continues if waiting else budget.room_for_new(left, trials))
            free = free and not blocked
            budget_left = budget.epochs_left(left, trials)
        if not waiting and continues:
            told = dict(can_resume=can_resume, budget_left=budget_left)
            resumable = resumable_trials(study, limit=1, more_trials=free, **told)
            if not resumable and not free and running == 0 and _resumes(study) and settle_predictor(study):
                # The last promote before the search ends reads the predictor fitted on every curve.
                resumable = resumable_trials(study, limit=1, **told)
            if resumable:
                resumable[0].enqueue(study)
                free = True  # its configuration is counted already
        if not free:
            ended = blocked or (target is not None and finished >= target)
            return Claim(done=ended and (running == 0 or not _resumes(study) or not continues))
        trial = study.ask()  # a waiting retry or resumption first, else a new configuration
        trial.set_user_attr(OWNER_ATTR, owner_record(grace_period))
        return Claim(trial)


def _resuming_policy(study: optuna.Study) -> StoppingPolicy | None:
    """The policy of the study's pruner when it may resume paused trials, else None."""
    pruner = study.pruner
    policy = pruner.policy_ if isinstance(pruner, PredictivePruner) else None
    return policy if policy is not None and policy.resumes else None


def _resumes(study: optuna.Study) -> bool:
    """Whether the study's pruner may resume paused trials (then the search ends only when nothing runs)."""
    return _resuming_policy(study) is not None
