"""The support vector regressor whose training problem is a QUBO."""

from qhpo.qsvr._bias import kkt_bias
from qhpo.qsvr._combine import COMBINATIONS, combination_weights, unique_lowest
from qhpo.qsvr._decode import bit_weights, box_bound, decode_coefficients, remove_overlap
from qhpo.qsvr._ensemble import QSVREnsemble
from qhpo.qsvr._estimator import QSVR, sample_qubo
from qhpo.qsvr._qubo import build_svr_qubo, rbf_kernel

__all__ = [
    "COMBINATIONS",
    "QSVR",
    "QSVREnsemble",
    "bit_weights",
    "box_bound",
    "build_svr_qubo",
    "combination_weights",
    "decode_coefficients",
    "kkt_bias",
    "rbf_kernel",
    "remove_overlap",
    "sample_qubo",
    "unique_lowest",
]
