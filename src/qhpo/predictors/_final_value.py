"""Predicting a trial's final metric from the first ``t`` epochs of its learning curve."""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

from qhpo.curves import CurveFeaturizer

#: Names accepted for ``model``.
MODEL_NAMES = ("svr", "qsvr", "qsvr-ensemble")
# Folds of the cross-validation that estimates the held-out error of models that do not
# report one themselves.
_CV_FOLDS = 5


def unfitted_copy(estimator):
    """A new, unfitted estimator with the same parameters.

    Unlike :func:`sklearn.base.clone` it shares parameters that are not estimators (a
    sampler holding a QPU connection or an embedding cache is not deep-copied).
    """
    if not hasattr(estimator, "get_params"):
        return clone(estimator)
    params = {
        name: clone(value) if hasattr(value, "get_params") and not isinstance(value, type) else value
        for name, value in estimator.get_params(deep=False).items()
    }
    return type(estimator)(**params)


def classical_svr():
    """The scikit-learn SVR that solves the QSVR's problem exactly in continuous variables.

    Same RBF ``gamma`` and ``epsilon`` as :class:`qhpo.qsvr.QSVR`'s defaults, and box
    ``C = sum_i w_i``, the largest value the QSVR's K-bit coefficients can take.
    """
    from sklearn.svm import SVR

    from qhpo.qsvr import QSVR, box_bound

    q = QSVR()
    return SVR(kernel="rbf", gamma=q.gamma, epsilon=q.epsilon, C=box_bound(q.K, q.base, q.exponent_offset))


class FinalValuePredictor:
    """Regress the final value ``y`` of a curve on features of its first ``t`` epochs.

    Features are those of :class:`qhpo.curves.CurveFeaturizer` (min-max scaled on the
    training curves); the target is min-max scaled, ``y' = (y - y_min_) / y_scale_``, as
    the QSVR scales it, so that ``epsilon`` is the same fraction of the target range for
    every model. The returned standard deviation combines the model's own spread
    ``s_model`` (across the kept annealer samples and ensemble members; 0 for the SVR) with
    the root-mean-square held-out residual ``r`` (from points outside the QUBO or the
    member's subset where the model has them, otherwise from 5-fold cross-validation):

        std = y_scale_ * sqrt(s_model^2 + r^2).

    Example:
        >>> import numpy as np
        >>> curves = np.cumsum(np.random.default_rng(0).random((30, 10)), axis=1)
        >>> p = FinalValuePredictor("svr", t=3).fit(curves, curves[:, -1])
        >>> mean, std = p.predict(curves[:2], return_std=True)

    Args:
        model: ``"svr"``, ``"qsvr"``, ``"qsvr-ensemble"`` or a scikit-learn regressor.
        t: Number of leading epochs used as features.
        differences: Add first and second differences of the prefix to the features.
        hyperparameters: Add the numeric hyperparameters (``params``) to the features.
        sampler: Annealer for the QSVR models (name or dimod sampler; None: default).
        num_reads: Reads per QUBO for the QSVR models (None: their default).
        random_state: Seed of subsamples, annealer and cross-validation.
        error_estimate: Estimate the held-out residual ``r`` in ``fit`` (cross-validation
            fits where the model has no held-out points); without it ``r = 0`` and the
            std is the model's own spread only (a rank-only policy needs no more).
    """

    def __init__(
        self,
        model="svr",
        *,
        t,
        differences=False,
        hyperparameters=False,
        sampler=None,
        num_reads=None,
        random_state=None,
        error_estimate=True,
    ):
        if isinstance(model, str):
            if model not in MODEL_NAMES:
                raise ValueError(f"model must be one of {', '.join(MODEL_NAMES)} or an estimator, got {model!r}")
        elif not (hasattr(model, "fit") and hasattr(model, "predict")):
            raise ValueError(f"model must be a name or an object with fit and predict, got {model!r}")
        if isinstance(t, bool) or int(t) != t or t < 1:
            raise ValueError(f"t must be a positive number of epochs, got {t!r}")
        self.model = model
        self.t = int(t)
        self.differences = differences
        self.hyperparameters = hyperparameters
        self.sampler = sampler
        self.num_reads = num_reads
        self.random_state = random_state
        self.error_estimate = bool(error_estimate)

    def _new_estimator(self):
        if not isinstance(self.model, str):
            return unfitted_copy(self.model)
        if self.model == "svr":
            return classical_svr()
        from qhpo.qsvr import QSVR, QSVREnsemble

        cls = QSVR if self.model == "qsvr" else QSVREnsemble
        return cls(sampler=self.sampler, num_reads=self.num_reads, random_state=self.random_state)

    def _check_curves(self, curves, params, n=None):
        curves = np.asarray(curves, dtype=float)
        if curves.ndim != 2:
            raise ValueError(f"curves must be a 2-D array (trials, epochs), got shape {curves.shape}")
        if curves.shape[1] < self.t:
            raise ValueError(f"curves have {curves.shape[1]} epochs but the predictor reads the first t={self.t}")
        curves = curves[:, : self.t]
        if not np.all(np.isfinite(curves)):
            raise ValueError("curves must be finite in their first t epochs (no NaN or inf)")
        if self.hyperparameters:
            if params is None:
                raise ValueError("params are required when hyperparameters=True")
            params = np.asarray(params, dtype=float).reshape(curves.shape[0], -1)
        return curves, params

    def fit(self, curves, y, params=None) -> FinalValuePredictor:
        """Fit on curves ``(n, >=t)`` and final values ``y`` ``(n,)``; returns self."""
        return self._fit(curves, y, params, estimate_error=self.error_estimate)

    def _fit(self, curves, y, params, *, estimate_error: bool) -> FinalValuePredictor:
        # estimate_error=False skips the cross-validation behind the std, for evaluations
        # that only read the mean.
        started = time.perf_counter()
        curves, params = self._check_curves(curves, params)
        y = np.asarray(y, dtype=float).ravel()
        if y.shape[0] != curves.shape[0]:
            raise ValueError(f"y has {y.shape[0]} values but curves has {curves.shape[0]} rows")
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite (no NaN or inf)")
        if y.shape[0] < 2:
            raise ValueError(f"at least 2 curves are needed to fit, got {y.shape[0]}")
        self.featurizer_ = CurveFeaturizer(self.t, differences=self.differences, hyperparameters=self.hyperparameters)
        X = self.featurizer_.fit_transform(curves, params)
        self.y_min_ = float(y.min())
        span = float(y.max() - y.min())
        self.y_scale_ = span if span > 0 else 1.0
        y_scaled = (y - self.y_min_) / self.y_scale_
        self.estimator_ = self._new_estimator().fit(X, y_scaled)
        self.residual_rms_ = None
        if estimate_error:
            residuals = getattr(self.estimator_, "heldout_residuals_", None)
            if residuals is None or len(residuals) < 2:
                residuals = self._cross_validated_residuals(X, y_scaled)
            self.residual_rms_ = float(np.sqrt(np.mean(np.square(residuals))))
        self.n_train_ = int(y.shape[0])
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _cross_validated_residuals(self, X, y_scaled) -> np.ndarray:
        n = y_scaled.shape[0]
        if n < 4:
            # Too few points to hold any out: the target's own spread is the honest bound.
            return y_scaled - y_scaled.mean()
        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
        folds = KFold(n_splits=min(_CV_FOLDS, n), shuffle=True, random_state=seed)
        residuals = np.empty(n)
        for train, test in folds.split(X):
            model = unfitted_copy(self.estimator_).fit(X[train], y_scaled[train])
            residuals[test] = y_scaled[test] - model.predict(X[test])
        return residuals

    def predict(self, curves, params=None, return_std=False):
        """Predicted final values ``(m,)``; with ``return_std`` also their std ``(m,)``."""
        if not hasattr(self, "estimator_"):
            raise RuntimeError("FinalValuePredictor.predict called before fit")
        curves, params = self._check_curves(curves, params)
        X = self.featurizer_.transform(curves, params)
        try:
            mean, spread = self.estimator_.predict(X, return_std=True)
        except TypeError:
            mean, spread = self.estimator_.predict(X), np.zeros(X.shape[0])
        mean = np.asarray(mean) * self.y_scale_ + self.y_min_
        if not return_std:
            return mean
        if self.residual_rms_ is None and self.error_estimate:
            raise RuntimeError("this predictor was fitted without an error estimate; call fit()")
        residual = 0.0 if self.residual_rms_ is None else self.residual_rms_
        std = self.y_scale_ * np.sqrt(np.square(spread) + residual**2)
        return mean, std
