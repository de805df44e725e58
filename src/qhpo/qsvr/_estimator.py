"""The QUBO-trained support vector regressor (QSVR)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from qhpo.qsvr._bias import kkt_bias
from qhpo.qsvr._combine import COMBINATIONS, combination_weights, unique_lowest
from qhpo.qsvr._decode import box_bound, decode_coefficients, remove_overlap
from qhpo.qsvr._qubo import build_svr_qubo
from qhpo.qsvr._sklearn_private import HasMethods, Interval, StrOptions, _fit_context
from qhpo.samplers import SAMPLER_NAMES, resolve_sampler

#: Reads asked of the sampler when ``num_reads`` is None.
DEFAULT_NUM_READS = 100
# Beyond this many variables dimod's ExactSolver would enumerate more than 16M states.
_EXACT_MAX_VARIABLES = 24


def sample_qubo(bqm, sampler, *, num_reads: int, seed: int | None):
    """Sample ``bqm`` and return ``(bits, energies, info)`` with bits in variable order 0..M-1.

    ``num_reads`` and ``seed`` are passed only to samplers that accept them (an exact
    solver takes neither, the Leap hybrid solver no ``num_reads``). Energies are recomputed
    on ``bqm`` so that samplers working on an embedded problem report logical energies.
    ``info`` holds ``chain_break_fraction`` (mean over reads) when the sampler reports one.
    """
    import dimod

    M = bqm.num_variables
    if isinstance(sampler, dimod.ExactSolver) and M > _EXACT_MAX_VARIABLES:
        raise ValueError(
            f"the exact solver enumerates 2^{M} states; use it only for problems of at most "
            f"{_EXACT_MAX_VARIABLES} variables (2*K*N), or choose another sampler"
        )
    accepted = getattr(sampler, "parameters", {}) or {}
    kwargs = {}
    if "num_reads" in accepted:
        kwargs["num_reads"] = int(num_reads)
    if "seed" in accepted and seed is not None:
        kwargs["seed"] = int(seed)
    sampleset = sampler.sample(bqm, **kwargs)
    position = {v: i for i, v in enumerate(sampleset.variables)}
    missing = [v for v in range(M) if v not in position]
    if missing:
        raise ValueError(f"the sampler returned no value for variable(s) {missing[:5]}")
    bits = np.asarray(sampleset.record.sample)[:, [position[v] for v in range(M)]]
    energies = bqm.energies((bits, range(M)))
    info = {}
    if "chain_break_fraction" in sampleset.record.dtype.names:
        info["chain_break_fraction"] = float(np.mean(sampleset.record.chain_break_fraction))
    return bits, energies, info


def seed_from(rng) -> int:
    """A sampler seed drawn from a ``numpy.random.RandomState``."""
    return int(rng.randint(np.iinfo(np.int32).max))


def scale_targets(estimator, y: np.ndarray, name: str) -> np.ndarray:
    """Store ``y_min_`` and ``y_scale_`` on ``estimator`` and return ``(y - y_min_) / y_scale_``.

    The targets are min-max scaled to [0, 1] so that ``epsilon`` is a fraction of their
    range and the encoding's box ``[0, C]`` fits them; a constant ``y`` gets scale 1.
    """
    if y.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 training points, got {y.shape[0]} sample")
    estimator.y_min_ = float(y.min())
    span = float(y.max() - y.min())
    estimator.y_scale_ = span if span > 0 else 1.0
    return (y - estimator.y_min_) / estimator.y_scale_


class QSVR(RegressorMixin, BaseEstimator):
    """Epsilon-SVR with an RBF kernel, trained by sampling its dual as a QUBO.

    ``fit`` scales the targets to [0, 1] (``y' = (y - y_min_) / y_scale_``, so ``epsilon``
    is a fraction of the target range), draws at most ``max_points`` training points with
    ``random_state``, centres their targets (``y'' = y' - c``, ``c`` their mean: the
    penalty ``xi (sum_n d_n)^2`` is weak, and without centring the annealer would build the
    targets' mean out of kernel terms that vanish away from the training points), builds
    the QUBO of :func:`qhpo.qsvr.build_svr_qubo` on ``y''``, samples it
    ``num_reads`` times, and keeps the ``num_solutions`` unique samples of lowest energy.
    Each kept sample is decoded, made complementary (:func:`qhpo.qsvr._decode.remove_overlap`) and
    given its KKT bias (:func:`qhpo.qsvr._bias.kkt_bias`); the samples are then combined by
    ``combination`` (:mod:`qhpo.qsvr._combine`). The prediction is

        f(x) = y_scale_ * (sum_n dual_coef_[n] k(x, X_fit_[n]) + intercept_) + y_min_,

    where ``intercept_`` = ``c`` + the KKT bias on the centred targets.

    ``"heldout"`` weights come from the training points left out of the QUBO; when every
    point is in the QUBO there are none, and the rule used (``combination_``) is ``"mean"``.

    **The model is trained on at most** ``max_points`` **(20) points.** One QUBO holds ``2 K N``
    binary variables, so ``fit`` on 200 points solves the dual on a seeded subsample of 20
    of them, ``X[train_indices_]``, and uses the other 180 only to weight the annealer's
    samples; the fitted model is a 20-point SVR. Pass ``train_indices`` to choose the
    points, or use :class:`qhpo.qsvr.QSVREnsemble`, which trains QSVRs on disjoint subsets
    so that every point is used.

    Example:
        >>> import numpy as np
        >>> X = np.linspace(0, 1, 12)[:, None]
        >>> model = QSVR(sampler="sa", num_reads=20, random_state=0).fit(X, X[:, 0] ** 2)
        >>> model.predict(X[:2]).shape
        (2,)

    Args:
        K: Bits per coefficient (the QUBO has ``2*K*N`` variables).
        base: Base of the bit weights ``w_i = base ** (i - exponent_offset)``.
        exponent_offset: Offset of the exponents; the box is ``C = sum_i w_i``.
        epsilon: Half-width of the insensitive tube, in units of the scaled target.
        xi: Penalty weight of the constraint ``sum_n (alpha_n - alpha_hat_n) = 0``.
        gamma: RBF kernel width, ``k(x, x') = exp(-gamma |x - x'|^2)``.
        max_points: Most training points in one QUBO (20 at K=3 fills an Advantage clique).
        sampler: A sampler name (see :func:`qhpo.samplers.make_sampler`), a dimod sampler,
            or None for :data:`qhpo.samplers.DEFAULT_SAMPLER`.
        num_reads: Reads per QUBO (None: 100).
        num_solutions: Unique lowest-energy samples kept (``S``).
        combination: ``"heldout"``, ``"mean"`` or ``"best"``.
        random_state: Seed of the subsample and of samplers that take a seed.

    Attributes:
        train_indices_: Rows of ``X`` in the QUBO (at most ``max_points``), sorted.
        X_fit_: Those rows.
        dual_coef_: ``alpha_n - alpha_hat_n`` of the combined model, one per row of ``X_fit_``.
        intercept_: Its bias on the scaled targets.
        heldout_residuals_: ``y - predict(X)`` on the rows left out of the QUBO (None when none was).
        combination_: The rule that combined the samples.
    """

    _parameter_constraints: dict = {
        "K": [Interval(Integral, 1, None, closed="left")],
        "base": [Interval(Real, 0, None, closed="neither")],
        "exponent_offset": [Real],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "xi": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "max_points": [Interval(Integral, 2, None, closed="left")],
        "sampler": [None, StrOptions(set(SAMPLER_NAMES)), HasMethods(["sample"])],
        "num_reads": [None, Interval(Integral, 1, None, closed="left")],
        "num_solutions": [Interval(Integral, 1, None, closed="left")],
        "combination": [StrOptions(set(COMBINATIONS))],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        K=3,
        base=0.5,
        exponent_offset=0.005,
        epsilon=0.02,
        xi=0.01,
        gamma=0.1,
        max_points=20,
        sampler=None,
        num_reads=None,
        num_solutions=4,
        combination="heldout",
        random_state=None,
    ):
        self.K = K
        self.base = base
        self.exponent_offset = exponent_offset
        self.epsilon = epsilon
        self.xi = xi
        self.gamma = gamma
        self.max_points = max_points
        self.sampler = sampler
        self.num_reads = num_reads
        self.num_solutions = num_solutions
        self.combination = combination
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # One QUBO holds at most max_points points: on data sets much larger than that the
        # training-set R^2 is that of a 20-point model (it matches the classical SVR's on
        # the same subsample), below the 0.5 that scikit-learn's generic check expects.
        tags.regressor_tags.poor_score = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, train_indices=None):
        """Fit on ``X`` (n, D) and ``y`` (n,); returns self.

        Args:
            train_indices: The points of the QUBO (at most ``max_points``; None: a random
                subsample of that size, or every point when there are fewer); the other
                points are held out and weight the annealer samples.
        """
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        n = X.shape[0]
        y_scaled = scale_targets(self, y, type(self).__name__)
        rng = check_random_state(self.random_state)
        if train_indices is not None:
            subset = _check_indices(train_indices, n, int(self.max_points))
        elif n > self.max_points:
            subset = np.sort(rng.choice(n, size=int(self.max_points), replace=False))
        else:
            subset = np.arange(n)
        heldout = np.setdiff1d(np.arange(n), subset)
        self._fit_scaled(X, y_scaled, subset, heldout, seed_from(rng), resolve_sampler(self.sampler))
        if heldout.size:
            self.heldout_residuals_ = y[heldout] - self.predict(X[heldout])
        else:
            self.heldout_residuals_ = None
        return self

    def _fit_scaled(self, X, y_scaled, subset, heldout, seed, sampler) -> None:
        """Solve the QUBO on ``X[subset]`` and set the learned state (targets already scaled)."""
        K, N = int(self.K), subset.size
        X_fit = X[subset]
        # Centred targets make the bias-free optimum the one that satisfies sum_n d_n = 0,
        # which the weak penalty xi alone does not enforce.
        center = float(y_scaled[subset].mean())
        y_fit = y_scaled[subset] - center
        C = box_bound(K, self.base, self.exponent_offset)
        bqm = build_svr_qubo(
            X_fit,
            y_fit,
            K=K,
            base=self.base,
            exponent_offset=self.exponent_offset,
            epsilon=self.epsilon,
            xi=self.xi,
            gamma=self.gamma,
        )
        num_reads = DEFAULT_NUM_READS if self.num_reads is None else int(self.num_reads)
        bits, energies, info = sample_qubo(bqm, sampler, num_reads=num_reads, seed=seed)
        bits, energies = unique_lowest(bits, energies, self.num_solutions)
        alpha, alpha_hat = remove_overlap(*decode_coefficients(bits, N, K, self.base, self.exponent_offset))
        dual = alpha - alpha_hat  # (S, N)
        kernel = rbf_kernel(X_fit, X_fit, gamma=self.gamma)
        residual = y_fit[None, :] - dual @ kernel  # y_n - f0_s(x_n)
        intercepts = center + np.array(
            [kkt_bias(a, h, r, self.epsilon, C) for a, h, r in zip(alpha, alpha_hat, residual, strict=True)]
        )

        rule = self.combination
        heldout_pred = None
        if rule == "heldout":
            if heldout.size:
                heldout_pred = dual @ rbf_kernel(X_fit, X[heldout], gamma=self.gamma) + intercepts[:, None]
            else:
                rule = "mean"
        weights = combination_weights(
            rule, heldout_pred, None if heldout_pred is None else y_scaled[heldout], n_samples=dual.shape[0]
        )
        self.X_fit_ = X_fit
        self.train_indices_ = subset
        self.box_ = C
        self.sample_energies_ = energies
        self.sample_dual_coef_ = dual
        self.sample_intercept_ = intercepts
        self.sample_weights_ = weights
        self.dual_coef_ = weights @ dual
        self.intercept_ = float(weights @ intercepts)
        self.combination_ = rule
        self.n_solutions_ = dual.shape[0]
        self.chain_break_fraction_ = info.get("chain_break_fraction")

    def predict_samples(self, X) -> np.ndarray:
        """Predictions of every kept sample, shape ``(S, m)``, in the units of ``y``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        scaled = self.sample_dual_coef_ @ rbf_kernel(self.X_fit_, X, gamma=self.gamma) + self.sample_intercept_[:, None]
        return scaled * self.y_scale_ + self.y_min_

    def _weighted_samples(self, X):
        return self.predict_samples(X), self.sample_weights_

    def predict(self, X, return_std: bool = False):
        """``f(X)``; with ``return_std`` also the weighted spread of the kept samples."""
        samples, weights = self._weighted_samples(X)
        mean = weights @ samples
        if not return_std:
            return mean
        return mean, np.sqrt(np.maximum(weights @ (samples - mean) ** 2, 0.0))


def _check_indices(indices, n: int, most: int) -> np.ndarray:
    """``indices`` as a sorted array of distinct point indices, 2 to ``most`` of them."""
    indices = np.asarray(indices)
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"train_indices must be a 1-d array of integer indices, got {indices!r}")
    unique = np.unique(indices)
    if unique.size != indices.size or (unique.size and not 0 <= unique[0] <= unique[-1] < n):
        raise ValueError(f"train_indices must be distinct indices in [0, {n}), got {indices!r}")
    if not 2 <= unique.size <= most:
        raise ValueError(f"train_indices must hold 2 to max_points={most} points, got {unique.size}")
    return unique
