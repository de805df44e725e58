"""What :class:`~qhpo.optuna.PredictivePruner` keeps for each study and each trial it serves."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from qhpo._checks import check_int
from qhpo._optuna_schema import MAX_EPOCHS_ATTR, RETRY_OF_ATTR, trial_id, was_enqueued
from qhpo.optuna._trial_views import TrialViewCache, resumed_after
from qhpo.policies import PolicyDriver, StoppingPolicy


@dataclasses.dataclass
class TrialProgress:
    """What the pruner has seen of one trial: its steps, the last step judged, its last answer."""

    steps: set[int] = dataclasses.field(default_factory=set)
    judged: int = 0
    answer: bool = False

    @classmethod
    def first_seen(cls, trial: FrozenTrial, last: int) -> TrialProgress:
        """The progress of a trial asking for the first time, having reported up to step ``last``."""
        return cls(judged=judged_before(trial, last))


def judged_before(trial: FrozenTrial, last: int) -> int:
    """The last step judged before ``trial`` first asks: a resumption was judged up to its
    pause by the trial it continues; a retry reports its checkpoint's epochs again, and the
    trial it retries was judged up to the epoch before its last one (it may have died before
    that decision); any other trial has been judged nowhere."""
    resumed = resumed_after(trial) or 0
    if trial.user_attrs.get(RETRY_OF_ATTR) is not None:
        return max(last - 1, resumed)  # the retry of a resumption keeps the resumption's point
    return resumed


@dataclasses.dataclass
class StudyState:
    """Everything the pruner keeps for one study."""

    key: tuple[int, int]
    storage: Any  # held so that the id in ``key`` cannot be reused by another storage
    driver: PolicyDriver | None = None  # asks the study's policy
    max_epochs: int | None = None
    max_epochs_from: str = ""
    views: TrialViewCache = dataclasses.field(default_factory=TrialViewCache)
    unranked: dict[int, frozenset[int]] = dataclasses.field(default_factory=dict)  # per trial id: qhpo.unranked
    trials: dict[int, TrialProgress] = dataclasses.field(default_factory=dict)
    asked: datetime.datetime | None = None  # the last promote() call
    unanswered: datetime.datetime | None = None  # the first pause since then
    counted: set[int] = dataclasses.field(default_factory=set)  # trials started after it

    @property
    def policy(self) -> StoppingPolicy | None:
        """The policy deciding for the study (None until its epoch budget is known)."""
        return None if self.driver is None else self.driver.policy

    def use(self, driver: PolicyDriver, max_epochs: int, source: str) -> None:
        """Decide through ``driver`` from now on, for the epoch budget ``max_epochs`` (read from ``source``)."""
        if self.policy is not None and self.policy is not driver.policy:
            service = self.policy.prediction_service
            if service is not None:
                service.close()  # the policy for the shorter budget is done
        self.driver, self.max_epochs, self.max_epochs_from = driver, int(max_epochs), source

    def stamped(self, record: dict[str, Any], step: int) -> dict[str, Any]:
        """A decision ``record`` as stored: with the ``step`` it was asked at and the epoch budget it read."""
        return {**record, "step": int(step), "max_epochs": self.max_epochs, "max_epochs_from": self.max_epochs_from}

    def budget(self, study: optuna.Study, fixed: int | None, step: int) -> tuple[int | None, str]:
        """``(max_epochs, where it came from)``: ``fixed`` (the pruner's argument), the study's
        attribute (read once), else the largest step reported so far (``step``: the asking
        trial's), which never shrinks."""
        if fixed is not None:
            return fixed, "max_epochs argument"
        if self.max_epochs_from == "study user attribute":
            return self.max_epochs, self.max_epochs_from
        value = study.user_attrs.get(MAX_EPOCHS_ATTR)
        if value is not None:
            return check_int(f"the study user attribute {MAX_EPOCHS_ATTR}", value, least=1), "study user attribute"
        trials = study.get_trials(deepcopy=False)
        longest = max((max(t.intermediate_values) for t in trials if t.intermediate_values), default=0)
        longest = max(longest, step, self.max_epochs or 0)
        return (longest or None), "largest step reported so far"

    def epochs_to_judge(self, progress: TrialProgress, last: int) -> list[int]:
        """The decision epochs a trial reached since it was last judged, now that it reported step ``last``."""
        epochs = self.driver.epochs.reached(progress.judged, last)
        progress.judged = last
        return epochs

    def counts_unasked_start(self, trial: FrozenTrial) -> bool:
        """Count ``trial`` when the sampler started it after a pause that no promote() answered;
        True once two have (a freeze-thaw rule whose paused trials nobody resumes)."""
        if self.unanswered is None:
            return False
        started = trial.datetime_start
        if started is None or started <= self.unanswered or trial_id(trial) in self.counted:
            return False
        if was_enqueued(trial):
            return False  # an enqueued trial (a retry, a resumption, the user's) rightly goes before any resumption
        self.counted.add(trial_id(trial))
        return len(self.counted) >= 2

    def note_pause(self) -> None:
        """A trial paused: trials that start from now on without a promote() are counted."""
        if self.unanswered is None:
            self.unanswered = datetime.datetime.now()
            self.counted = set()
