"""scikit-learn's own conformance checks for QSVR and QSVREnsemble.

Checks that are not run, and why:
- ``check_array_api_input``: skipped by scikit-learn itself unless SCIPY_ARRAY_API is set;
  the QSVR computes with NumPy only.
- the score assertion of ``check_regressors_train`` for ``QSVR`` only (``poor_score``
  tag): one QUBO holds at most 20 of the check's 200 points, and a 20-point RBF model
  reaches a training R^2 of about 0.4 there, as scikit-learn's SVR on the same 20 points
  does (0.36), below the check's 0.5. ``QSVREnsemble`` uses every point and passes the
  full check.

The checks fit dozens of models, so they use greedy descent with few reads; the
samplers themselves are tested elsewhere.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from qhpo.qsvr import QSVR, QSVREnsemble


@parametrize_with_checks(
    [
        QSVR(sampler="steepest", num_reads=10, random_state=0),
        QSVREnsemble(sampler="steepest", num_reads=10, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
