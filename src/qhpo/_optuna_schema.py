"""qhpo's study schema: every ``qhpo.*`` attribute it keeps in an Optuna study, and the one
module that touches Optuna's private API.

An Optuna study holds qhpo's state in user attributes (JSON values), on trials and on the
study. :data:`ATTRIBUTES` lists every key with where it lives, the type of its value and
what it means; each is an :class:`Attribute` whose :meth:`~Attribute.get` reads it from a
trial or a study. The ``*_ATTR`` names are the keys as plain strings.

Optuna gives no public way to reach a few things qhpo needs: the storage object behind a
study (to write an attribute of a trial that is not the caller's ``optuna.Trial``, such as
the pruner's records or a heartbeat from another thread), a trial's storage id, a study's
id, and the parameters a trial was enqueued with (``system_attrs["fixed_params"]``, which
``study.enqueue_trial`` writes). The functions below are the only code of qhpo that reads
those private names (a test enforces it), so a change in Optuna is fixed here alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import optuna
from optuna.trial import FrozenTrial

T = TypeVar("T")


@dataclass(frozen=True)
class Attribute(Generic[T]):
    """One ``qhpo.*`` user attribute.

    Attributes:
        key: The user attribute's key (for a ``prefix`` attribute, the start of each key).
        on: ``"trial"`` or ``"study"``.
        type: The Python type of its (JSON) value.
        meaning: What it holds and who writes it.
        prefix: One key per writer: ``key`` followed by the writer's name.
    """

    key: str
    on: Literal["trial", "study"]
    type: type
    meaning: str
    prefix: bool = False

    def get(self, holder: Any, default: T | None = None) -> T | None:
        """Its value in ``holder`` (a trial or a study: anything with ``user_attrs``), else ``default``."""
        assert not self.prefix, f"{self.key}* names one key per writer"
        return holder.user_attrs.get(self.key, default)

    def write(self, study: optuna.Study, trial: optuna.Trial | FrozenTrial, value: T) -> None:
        """Store ``value`` on ``trial`` through the study's storage (any thread, any trial object).

        Raises Optuna's ``UpdateFinishedTrialError`` when the trial has finished.
        """
        assert self.on == "trial", f"{self.key} is a study attribute"
        storage_of(study).set_trial_user_attr(trial_id(trial), self.key, value)


# -- trials: the run's bookkeeping (qhpo run) -----------------------------------------------
OWNER: Attribute[dict] = Attribute(
    "qhpo.owner", "trial", dict, "the process training the trial: host, boot id, pid, start time, grace period (s)"
)
HEARTBEAT: Attribute[float] = Attribute("qhpo.heartbeat", "trial", float, "UNIX time of the last finished epoch")
ALIVE: Attribute[float] = Attribute(
    "qhpo.alive", "trial", float, "UNIX time of the owner's last heartbeat (qhpo.runner's TrialHeartbeat)"
)
FAILURE: Attribute[str] = Attribute("qhpo.failure", "trial", str, "why the trial failed, one sentence")
KILLS: Attribute[int] = Attribute(
    "qhpo.kills", "trial", int, "times in a row the configuration's process died without finishing an epoch"
)
RETRY_OF: Attribute[int] = Attribute(
    "qhpo.retry_of", "trial", int, "number of the interrupted trial this one retries from its checkpoint"
)
CHECKPOINT: Attribute[Any] = Attribute(
    "qhpo.checkpoint", "trial", object, "checkpoint key shared by a trial and every trial that continues it"
)
RESUMED_AT: Attribute[int] = Attribute(
    "qhpo.resumed_at_epoch", "trial", int, "epoch from which the trial continued a checkpoint"
)
EPOCH_SECONDS: Attribute[float] = Attribute(
    "qhpo.epoch_seconds", "trial", float, "mean wall-clock seconds of the trial's epochs"
)
RESTART_OF: Attribute[Any] = Attribute(
    "qhpo.restart_of", "trial", object, "a configuration started afresh: the checkpoint key it could not continue"
)
BUDGET_CUT: Attribute[int] = Attribute(
    "qhpo.budget_cut", "trial", int, "a trial cut because the search's budget ran out: the epoch it was cut after"
)
RAY_TRIAL: Attribute[str] = Attribute(
    "qhpo.ray_trial", "trial", str, "the Ray Tune trial id a trial was recorded from (qhpo run --backend ray)"
)
# -- trials: the pruner's decisions (qhpo.optuna) ---------------------------------------------
DECISIONS: Attribute[list] = Attribute(
    "qhpo.decisions", "trial", list, "the decision records (Verdict.record) of the predictive or ending decisions"
)
STOP: Attribute[dict] = Attribute(
    "qhpo.stop", "trial", dict, "the record of the decision that ended the trial's training (a stop or a pause)"
)
PAUSED: Attribute[dict] = Attribute(
    "qhpo.paused", "trial", dict, "the record of the PAUSE that ended the trial; its checkpoint is kept"
)
RESUME_OF: Attribute[int] = Attribute("qhpo.resume_of", "trial", int, "number of the paused trial this trial continues")
RESUME: Attribute[dict] = Attribute("qhpo.resume", "trial", dict, "the policy's resumption (Resumption.record)")
UNRANKED: Attribute[list] = Attribute(
    "qhpo.unranked", "trial", list, "decision epochs at which the policy let the trial go on unranked"
)
REPLAY_FINISHED: Attribute[dict] = Attribute(
    "qhpo.replay.finished", "trial", dict, "a live-replay trial's epochs trained and worker index"
)
# -- the study --------------------------------------------------------------------------------
SETTINGS: Attribute[dict] = Attribute(
    "qhpo.settings", "study", dict, "the settings that define the results; a process with others is refused"
)
METRIC: Attribute[str] = Attribute("qhpo.metric", "study", str, "what the trials' values measure")
MAX_EPOCHS: Attribute[int] = Attribute(
    "qhpo.max_epochs", "study", int, "the epoch budget a pruner built without max_epochs reads"
)
JOINED: Attribute[int] = Attribute(
    "qhpo.joined", "study", int, "worker processes that joined the study on a database server"
)
TEST: Attribute[dict] = Attribute("qhpo.test", "study", dict, "the test accuracy of the best configuration")
PREDICTOR: Attribute[dict] = Attribute(
    "qhpo.predictor.", "study", dict, "per HOST:PID: the process's predictor fit counts", prefix=True
)
BUDGET_CLOCK: Attribute[list] = Attribute(
    "qhpo.budget.clock:",
    "study",
    list,
    "per HOST:PID:START of a worker process of qhpo run --budget: [start, last] UNIX times it was active",
    prefix=True,
)
RAY_BUDGET: Attribute[str] = Attribute(
    "qhpo.ray.budget", "study", str, "the --budget a Ray experiment started with (none: without one)"
)
RAY_BUDGET_EPOCHS: Attribute[int] = Attribute(
    "qhpo.ray.budget_epochs",
    "study",
    int,
    "epochs a Ray search's budget account counted (epochs trained again from a checkpoint after a resume included)",
)
REPLAY_PREDICTOR_SECONDS: Attribute[float] = Attribute(
    "qhpo.replay.predictor_seconds.", "study", float, "per live-replay worker: its predictor's seconds", prefix=True
)

#: Every attribute qhpo keeps in a study, by key.
ATTRIBUTES: dict[str, Attribute] = {
    a.key: a
    for a in (
        OWNER,
        HEARTBEAT,
        ALIVE,
        FAILURE,
        KILLS,
        RETRY_OF,
        CHECKPOINT,
        RESUMED_AT,
        EPOCH_SECONDS,
        RESTART_OF,
        BUDGET_CUT,
        RAY_TRIAL,
        DECISIONS,
        STOP,
        PAUSED,
        RESUME_OF,
        RESUME,
        UNRANKED,
        REPLAY_FINISHED,
        SETTINGS,
        METRIC,
        MAX_EPOCHS,
        JOINED,
        TEST,
        PREDICTOR,
        BUDGET_CLOCK,
        RAY_BUDGET,
        RAY_BUDGET_EPOCHS,
        REPLAY_PREDICTOR_SECONDS,
    )
}

OWNER_ATTR = OWNER.key
HEARTBEAT_ATTR = HEARTBEAT.key
ALIVE_ATTR = ALIVE.key
FAILURE_ATTR = FAILURE.key
KILLS_ATTR = KILLS.key
RETRY_OF_ATTR = RETRY_OF.key
CHECKPOINT_ATTR = CHECKPOINT.key
RESUMED_AT_ATTR = RESUMED_AT.key
EPOCH_SECONDS_ATTR = EPOCH_SECONDS.key
RESTART_OF_ATTR = RESTART_OF.key
BUDGET_CUT_ATTR = BUDGET_CUT.key
BUDGET_CLOCK_PREFIX = BUDGET_CLOCK.key
RAY_BUDGET_ATTR = RAY_BUDGET.key
RAY_BUDGET_EPOCHS_ATTR = RAY_BUDGET_EPOCHS.key
DECISIONS_ATTR = DECISIONS.key
STOP_ATTR = STOP.key
PAUSED_ATTR = PAUSED.key
RESUME_OF_ATTR = RESUME_OF.key
RESUME_ATTR = RESUME.key
UNRANKED_ATTR = UNRANKED.key
SETTINGS_ATTR = SETTINGS.key
METRIC_ATTR = METRIC.key
MAX_EPOCHS_ATTR = MAX_EPOCHS.key
JOINED_ATTR = JOINED.key
TEST_ATTR = TEST.key
PREDICTOR_ATTR_PREFIX = PREDICTOR.key


# -- Optuna's private names -------------------------------------------------------------------
def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage object behind ``study`` (``study._storage``)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (``study._study_id``)."""
    return study._study_id


def study_key(study: optuna.Study) -> tuple[int, int]:
    """``(id of the storage object, study id)``: one study as seen from this process."""
    return id(study._storage), study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in its storage (``trial._trial_id``), unique across the storage's studies."""
    return trial._trial_id


def stored_trial(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> FrozenTrial:
    """``trial`` as the storage holds it now (its state and attributes written by any process)."""
    return study._storage.get_trial(trial._trial_id)


def trial_by_number(study: optuna.Study, number: int) -> FrozenTrial:
    """The study's trial numbered ``number``, read from the storage; ``KeyError`` when there is none."""
    storage = study._storage
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, int(number)))


def enqueued_params(trial: FrozenTrial) -> dict[str, Any]:
    """The parameters ``study.enqueue_trial`` gave the trial (``system_attrs["fixed_params"]``); empty
    for a trial the sampler proposed."""
    return dict(trial.system_attrs.get("fixed_params") or {})


def was_enqueued(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was started from ``study.enqueue_trial`` (a retry, a resumption, the user's)."""
    return "fixed_params" in trial.system_attrs
