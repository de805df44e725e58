"""Predictors of a trial's final metric from its partial learning curve."""

from qhpo.predictors._evaluate import decision_epoch, evaluate_predictor
from qhpo.predictors._final_value import MODEL_NAMES, FinalValuePredictor, classical_svr

#: The replay's perfect predictor (``qhpo bench --predictor oracle``): it reads the recorded
#: curves, so only the replay can offer it.
ORACLE = "oracle"
#: The replay's final-value oracle (``--predictor oracle-final``): the recorded final value,
#: whatever epoch the rule asks about (what ranking on the final itself would win).
ORACLE_FINAL = "oracle-final"
#: What ``qhpo run`` and the adapters answer when asked for the oracle.
ORACLE_REFUSAL = (
    "predictor 'oracle' (or 'oracle-final') reads the recorded curves of a replay and exists only in qhpo bench; "
    "choose svr, qsvr or qsvr-ensemble."
)

__all__ = [
    "MODEL_NAMES",
    "ORACLE",
    "ORACLE_FINAL",
    "ORACLE_REFUSAL",
    "FinalValuePredictor",
    "classical_svr",
    "decision_epoch",
    "evaluate_predictor",
]
