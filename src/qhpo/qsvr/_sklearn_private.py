"""The scikit-learn names the QSVR estimators take from scikit-learn's private modules.

scikit-learn's own estimators declare their parameters in ``_parameter_constraints`` with
``Interval``, ``StrOptions`` and ``HasMethods`` (``sklearn.utils._param_validation``) and
wrap ``fit`` in ``sklearn.base._fit_context``, which checks those constraints once per fit
and gives the messages scikit-learn's users know. :class:`~qhpo.qsvr.QSVR` and
:class:`~qhpo.qsvr.QSVREnsemble` do the same, so that they pass scikit-learn's estimator
checks. scikit-learn keeps these names in private modules; this module is the only code of
qhpo that imports them (a test enforces it), so a move in a later scikit-learn release is
fixed here alone. The names have been where they are since scikit-learn 1.3; qhpo needs
1.6 or later for the public ``sklearn.utils.validation.validate_data``.
"""

from __future__ import annotations

from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

__all__ = ["HasMethods", "Interval", "StrOptions", "_fit_context"]
