"""The Optuna adapter: :class:`PredictivePruner`, a drop-in ``optuna.pruners.BasePruner``."""

from qhpo.optuna._pruner import DECISIONS_ATTR, MAX_EPOCHS_ATTR, STOP_ATTR, PredictivePruner
from qhpo.optuna._trial_views import TrialViewCache, trial_curve, trial_view

__all__ = ["DECISIONS_ATTR", "MAX_EPOCHS_ATTR", "STOP_ATTR", "PredictivePruner", "TrialViewCache", "trial_curve", "trial_view"]
