"""The Optuna adapter: :class:`PredictivePruner`, a drop-in ``optuna.pruners.BasePruner``;
freeze-thaw in ``study.optimize`` (:class:`ResumePausedTrials`, :class:`TrialCheckpoint`,
:func:`resumable_trials`); and Optuna's own pruners with the defaults qhpo compares against
(:func:`optuna_pruner`)."""

from qhpo._optuna_schema import (
    CHECKPOINT_ATTR,
    DECISIONS_ATTR,
    MAX_EPOCHS_ATTR,
    PAUSED_ATTR,
    RESUME_ATTR,
    RESUME_OF_ATTR,
    RETRY_OF_ATTR,
    STOP_ATTR,
    UNRANKED_ATTR,
)
from qhpo.optuna._baselines import OPTUNA_PRUNERS, optuna_pruner, pruner_defaults
from qhpo.optuna._first_rung import first_rung
from qhpo.optuna._pruner import PredictivePruner, can_freeze_thaw
from qhpo.optuna._resume import (
    ResumableTrial,
    ResumePausedTrials,
    TrialCheckpoint,
    checkpoint_key,
    resumable_trials,
    settle_predictor,
)
from qhpo.optuna._trial_views import (
    configuration_counts,
    continuations,
    is_paused,
    resumed_after,
    trial_curve,
)

__all__ = [
    "CHECKPOINT_ATTR",
    "DECISIONS_ATTR",
    "MAX_EPOCHS_ATTR",
    "OPTUNA_PRUNERS",
    "PAUSED_ATTR",
    "RESUME_ATTR",
    "RESUME_OF_ATTR",
    "RETRY_OF_ATTR",
    "STOP_ATTR",
    "UNRANKED_ATTR",
    "PredictivePruner",
    "ResumableTrial",
    "ResumePausedTrials",
    "TrialCheckpoint",
    "can_freeze_thaw",
    "checkpoint_key",
    "configuration_counts",
    "continuations",
    "first_rung",
    "is_paused",
    "optuna_pruner",
    "pruner_defaults",
    "resumable_trials",
    "settle_predictor",
    "resumed_after",
    "trial_curve",
]
