"""Predictors of a trial's final metric from its partial learning curve."""

from qhpo.predictors._evaluate import decision_epoch, evaluate_predictor
from qhpo.predictors._final_value import MODEL_NAMES, FinalValuePredictor, classical_svr

__all__ = ["MODEL_NAMES", "FinalValuePredictor", "classical_svr", "decision_epoch", "evaluate_predictor"]
