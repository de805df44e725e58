"""The Optuna adapter: :class:`PredictivePruner`, a drop-in ``optuna.pruners.BasePruner``, and
Optuna's own pruners with the defaults qhpo compares against (:func:`optuna_pruner`)."""

from qhpo.optuna._baselines import OPTUNA_PRUNERS, optuna_pruner, pruner_defaults
from qhpo.optuna._pruner import DECISIONS_ATTR, MAX_EPOCHS_ATTR, STOP_ATTR, PredictivePruner
from qhpo.optuna._trial_views import trial_curve

__all__ = [
    "DECISIONS_ATTR",
    "MAX_EPOCHS_ATTR",
    "OPTUNA_PRUNERS",
    "STOP_ATTR",
    "PredictivePruner",
    "optuna_pruner",
    "pruner_defaults",
    "trial_curve",
]
