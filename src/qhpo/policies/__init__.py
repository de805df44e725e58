"""Stopping policies: pure decision logic shared by the Optuna, Ray Tune and replay adapters."""

from qhpo.policies._baker import BakerEarlyStopping
from qhpo.policies._base import Decision, Resumption, StoppingPolicy, TrialStatus, TrialView, Verdict
from qhpo.policies._curve_prior import PriorStanding
from qhpo.policies._driver import DecisionEpochs, PolicyDriver, Ruling, TopicWarnings
from qhpo.policies._none import NoStopping
from qhpo.policies._one_epoch import OneEpoch
from qhpo.policies._poster import DecisionPointPolicy
from qhpo.policies._prediction import PredictionService
from qhpo.policies._predictive import PredictivePolicy
from qhpo.policies._predictive_halving import PredictiveHalving, PredictiveHalvingStop, rung_epochs
from qhpo.policies._registry import POLICY_NAMES, make_policy, policy_class
from qhpo.policies._swift_hyperband import SwiftHyperband

__all__ = [
    "BakerEarlyStopping",
    "Decision",
    "DecisionEpochs",
    "DecisionPointPolicy",
    "NoStopping",
    "OneEpoch",
    "POLICY_NAMES",
    "PolicyDriver",
    "PredictionService",
    "PredictiveHalving",
    "PredictiveHalvingStop",
    "PredictivePolicy",
    "PriorStanding",
    "Resumption",
    "Ruling",
    "StoppingPolicy",
    "SwiftHyperband",
    "TopicWarnings",
    "TrialStatus",
    "TrialView",
    "Verdict",
    "make_policy",
    "policy_class",
    "rung_epochs",
]
