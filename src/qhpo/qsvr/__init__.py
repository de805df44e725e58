"""The support vector regressor whose training problem is a QUBO.

:class:`QSVR` and :class:`QSVREnsemble` are scikit-learn regressors; :func:`build_svr_qubo`
writes the training problem as a ``dimod.BinaryQuadraticModel`` and :func:`sample_qubo`
samples it with any dimod sampler; :func:`box_bound` is the largest coefficient the
binary encoding can represent (the SVR's ``C``).
"""

from qhpo.qsvr._combine import COMBINATIONS
from qhpo.qsvr._decode import box_bound
from qhpo.qsvr._ensemble import QSVREnsemble
from qhpo.qsvr._estimator import QSVR, sample_qubo
from qhpo.qsvr._qubo import build_svr_qubo

__all__ = ["COMBINATIONS", "QSVR", "QSVREnsemble", "box_bound", "build_svr_qubo", "sample_qubo"]
