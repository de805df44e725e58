"""An ensemble of QSVRs on disjoint subsets, so that every training point is used."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from qhpo.qsvr._estimator import QSVR
from qhpo.qsvr._sklearn_private import _fit_context
from qhpo.samplers import resolve_sampler


class QSVREnsemble(QSVR):
    """QSVRs on disjoint subsets of at most ``max_points`` points, weighted by held-out error.

    ``fit`` shuffles the ``n`` points with ``random_state`` and splits them into
    ``J = ceil(n / max_points)`` disjoint subsets of near-equal size, which together hold
    every point, and draws one integer seed per member from the same generator (as
    scikit-learn's bagging does). Member ``j`` is a clone of a :class:`QSVR` with this ensemble's parameters,
    fitted by its public ``fit`` on all points with ``train_indices = P_j``: its QUBO holds
    ``P_j``, it scales the targets on all ``n`` points (so every member scales them alike),
    its annealer samples are combined on the points outside ``P_j``, and its weight is

        v_j = (1 / MSE_j) / sum_k (1 / MSE_k),  MSE_j = mean over i not in P_j of (f_j(x_i) - y_i)^2.

    The prediction is ``f(x) = sum_j v_j f_j(x)``. With ``return_std`` the standard deviation
    is the spread of the mixture of all kept samples of all members, sample ``s`` of member
    ``j`` having weight ``v_j omega_js``. ``heldout_residuals_`` holds, for every training
    point, its residual under the members that did not train on it (used by
    :class:`qhpo.predictors.FinalValuePredictor` for its error estimate).

    Example:
        >>> import numpy as np
        >>> X = np.linspace(0, 1, 30)[:, None]
        >>> model = QSVREnsemble(sampler="sa", num_reads=10, random_state=0).fit(X, X[:, 0])
        >>> len(model.members_)
        2

    Args: as for :class:`QSVR`; ``max_points`` is the size limit of each subset.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = False  # every point is used
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit one QSVR per subset; returns self."""
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"QSVREnsemble needs at least 2 training points, got {n} sample")
        rng = check_random_state(self.random_state)
        n_members = -(-n // int(self.max_points))
        subsets = [np.sort(part) for part in np.array_split(rng.permutation(n), n_members)]
        template = QSVR(**{**self.get_params(deep=False), "sampler": None, "random_state": None})
        sampler = resolve_sampler(self.sampler)  # one sampler (and QPU connection) for all members
        members = []
        for subset, seed in zip(subsets, rng.randint(np.iinfo(np.int32).max, size=n_members), strict=True):
            # set after cloning: clone would deep-copy the sampler (a QPU connection)
            member = clone(template).set_params(sampler=sampler, random_state=int(seed))
            members.append(member.fit(X, y, train_indices=subset))
        predictions = np.array([member.predict(X) for member in members])  # (J, n)
        outside = np.ones((n_members, n), dtype=bool)
        for j, subset in enumerate(subsets):
            outside[j, subset] = False
        if n_members > 1:
            sq_error = np.where(outside, (predictions - y[None, :]) ** 2, 0.0)
            mse = sq_error.sum(axis=1) / outside.sum(axis=1)
            inverse = 1.0 / np.maximum(mse, 1e-12)
            weights = inverse / inverse.sum()
            # Every point is predicted by the members that never saw it.
            held_weights = weights[:, None] * outside
            heldout_mean = (held_weights * predictions).sum(axis=0) / held_weights.sum(axis=0)
            self.heldout_residuals_ = y - heldout_mean
        else:
            weights = np.ones(1)
            self.heldout_residuals_ = None
        self.members_ = members
        self.subsets_ = subsets
        self.member_weights_ = weights
        return self

    def _weighted_samples(self, X):
        check_is_fitted(self, "members_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        rows, weights = [], []
        for v, member in zip(self.member_weights_, self.members_, strict=True):
            rows.append(member.predict_samples(X))
            weights.append(v * member.sample_weights_)
        return np.vstack(rows), np.concatenate(weights)

    def predict_samples(self, X) -> np.ndarray:
        """Predictions of every kept sample of every member, shape ``(sum_j S_j, m)``."""
        return self._weighted_samples(X)[0]
