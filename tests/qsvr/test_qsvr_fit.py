"""What ``QSVR.fit`` learns, checked against the formulas of its docstring with the exact
solver (every state of a 12-variable QUBO), and how it samples, scales and picks its points."""

from __future__ import annotations

import dimod
import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from qhpo.qsvr import QSVR, QSVREnsemble, box_bound, build_svr_qubo
from qhpo.qsvr._bias import kkt_bias
from qhpo.qsvr._combine import combination_weights
from qhpo.qsvr._decode import decode_coefficients, remove_overlap
from qhpo.qsvr._estimator import _check_indices, sample_qubo, scale_targets, seed_from

OPTIONS = dict(K=2, base=0.5, exponent_offset=0.0, epsilon=0.05, xi=0.01, gamma=0.7, max_points=3)


class LoggingExactSolver(dimod.Sampler):
    """dimod's exact solver that declares ``parameters``, logs what it was given, and returns
    the variables in reverse order with wrong energies and a chain-break fraction."""

    parameters: dict = {}
    properties: dict = {}

    def __init__(self, parameters=("num_reads", "seed")):
        self.parameters = {p: [] for p in parameters}
        self.calls = []

    def sample(self, bqm, **kwargs):
        self.calls.append(kwargs)
        exact = dimod.ExactSolver().sample(bqm)
        order = list(reversed(exact.variables))
        samples = exact.record.sample[:, [exact.variables.index(v) for v in order]]
        return dimod.SampleSet.from_samples(
            (samples, order),
            "BINARY",
            energy=np.zeros(len(samples)),
            chain_break_fraction=np.linspace(0.0, 1.0, len(samples)),
        )


def _data():
    X = np.array([[0.0, 0.1], [0.4, 0.3], [0.9, 0.5], [0.2, 0.8], [0.7, 0.9]])
    return X, 3.0 + 2.0 * X[:, 0] - X[:, 1] ** 2


def test_the_fitted_model_is_the_documented_combination_of_the_kept_samples():
    X, y = _data()
    model = QSVR(sampler="exact", num_solutions=3, random_state=0, **OPTIONS).fit(X, y)
    assert model.y_min_ == y.min() and model.y_scale_ == pytest.approx(y.max() - y.min())
    subset = model.train_indices_
    assert subset.tolist() == sorted(subset.tolist()) and subset.size == 3
    np.testing.assert_array_equal(model.X_fit_, X[subset])
    heldout = np.setdiff1d(np.arange(5), subset)
    scaled = (y - model.y_min_) / model.y_scale_
    center = scaled[subset].mean()
    # the kept samples are the three lowest energies of the QUBO on the centred targets
    bqm = build_svr_qubo(X[subset], scaled[subset] - center, **{k: v for k, v in OPTIONS.items() if k != "max_points"})
    lowest = np.sort(dimod.ExactSolver().sample(bqm).record.energy)[:3]
    np.testing.assert_allclose(model.sample_energies_, lowest)
    assert model.n_solutions_ == 3 and model.box_ == box_bound(2, 0.5, 0.0) == 1.5
    assert model.chain_break_fraction_ is None and model.combination_ == "heldout"
    # each sample: d = alpha - alpha_hat, and b = c + its KKT bias on the centred targets
    kernel = rbf_kernel(X[subset], X[subset], gamma=0.7)
    for dual, intercept in zip(model.sample_dual_coef_, model.sample_intercept_, strict=True):
        alpha, alpha_hat = np.maximum(dual, 0.0), np.maximum(-dual, 0.0)
        residual = scaled[subset] - center - kernel @ dual
        assert intercept == pytest.approx(center + kkt_bias(alpha, alpha_hat, residual, 0.05, 1.5))
    # weights from the held-out error (scaled units), and the model is their weighted mean
    held = model.sample_dual_coef_ @ rbf_kernel(X[subset], X[heldout], gamma=0.7) + model.sample_intercept_[:, None]
    np.testing.assert_allclose(
        model.sample_weights_, combination_weights("heldout", held, scaled[heldout], n_samples=3)
    )
    np.testing.assert_allclose(model.dual_coef_, model.sample_weights_ @ model.sample_dual_coef_)
    assert model.intercept_ == pytest.approx(model.sample_weights_ @ model.sample_intercept_)
    # f(x) = y_scale_ (sum_n d_n k(x, x_n) + b) + y_min_, and the spread of the samples around it
    f = model.y_scale_ * (model.dual_coef_ @ rbf_kernel(X[subset], X, gamma=0.7) + model.intercept_) + model.y_min_
    mean, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(mean, f)
    samples = model.predict_samples(X)
    assert samples.shape == (3, 5)
    np.testing.assert_allclose(std, np.sqrt(model.sample_weights_ @ (samples - f) ** 2))
    np.testing.assert_allclose(model.heldout_residuals_, y[heldout] - f[heldout])


def test_the_kept_samples_decode_to_complementary_coefficients():
    X, y = _data()
    model = QSVR(sampler="exact", num_solutions=4, combination="mean", random_state=1, **OPTIONS).fit(X, y)
    assert model.combination_ == "mean" and model.sample_weights_.tolist() == [0.25] * 4
    # every sample's d comes from a bit vector of the 2-bit grid {0, 0.5, 1, 1.5}
    assert np.all(np.isin(np.abs(model.sample_dual_coef_), [0.0, 0.5, 1.0, 1.5]))
    alpha, alpha_hat = remove_overlap(*decode_coefficients(np.ones(12), 3, 2, 0.5, 0.0))
    assert alpha.tolist() == alpha_hat.tolist() == [0.0, 0.0, 0.0]


def test_sample_qubo_passes_only_what_the_sampler_accepts_and_reads_the_variables_by_name():
    bqm = build_svr_qubo(
        np.eye(2), np.array([0.0, 1.0]), K=2, base=0.5, exponent_offset=0.0, epsilon=0.1, xi=0.01, gamma=0.1
    )
    sampler = LoggingExactSolver()
    bits, energies, info = sample_qubo(bqm, sampler, num_reads=7, seed=3)
    assert sampler.calls == [{"num_reads": 7, "seed": 3}]
    assert bits.shape == (2**8, 8)
    np.testing.assert_allclose(energies, bqm.energies((bits, range(8))))  # not the sampler's zeros
    assert energies.min() == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
    assert info == {"chain_break_fraction": pytest.approx(0.5)}
    sample_qubo(bqm, sampler, num_reads=7, seed=None)
    assert sampler.calls[-1] == {"num_reads": 7}
    quiet = LoggingExactSolver(parameters=())
    sample_qubo(bqm, quiet, num_reads=7, seed=3)
    assert quiet.calls == [{}]


def test_sample_qubo_names_the_variables_a_sampler_left_out():
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: -1.0, 2: 0.5}, {}, 0.0, "BINARY")
    partial = dimod.BinaryQuadraticModel({0: 1.0, 2: 0.5}, {}, 0.0, "BINARY")

    class LeavesOutOne(dimod.ExactSolver):
        def sample(self, bqm, **kwargs):
            return super().sample(partial)

    with pytest.raises(ValueError, match=r"the sampler returned no value for variable\(s\) \[1\]"):
        sample_qubo(bqm, LeavesOutOne(), num_reads=1, seed=None)


def test_targets_are_scaled_to_zero_one_and_a_constant_keeps_scale_one():
    model = QSVR()
    np.testing.assert_allclose(scale_targets(model, np.array([2.0, 4.0, 3.0]), "QSVR"), [0.0, 1.0, 0.5])
    assert model.y_min_ == 2.0 and model.y_scale_ == 2.0
    np.testing.assert_allclose(scale_targets(model, np.array([5.0, 5.0]), "QSVR"), [0.0, 0.0])
    assert model.y_min_ == 5.0 and model.y_scale_ == 1.0
    with pytest.raises(ValueError, match="^QSVR needs at least 2 training points, got 1 sample$"):
        scale_targets(model, np.array([1.0]), "QSVR")


def test_seeds_come_from_the_generator():
    assert seed_from(np.random.RandomState(5)) == np.random.RandomState(5).randint(2**31 - 1)


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([0.0, 1.0], "train_indices must be a 1-d array of integer indices"),
        ([[0, 1]], "train_indices must be a 1-d array of integer indices"),
        ([0, 0, 1], r"train_indices must be distinct indices in \[0, 5\)"),
        ([-1, 2], r"train_indices must be distinct indices in \[0, 5\)"),
        ([3, 5], r"train_indices must be distinct indices in \[0, 5\)"),
        ([1], "train_indices must hold 2 to max_points=3 points, got 1"),
        ([0, 1, 2, 3], "train_indices must hold 2 to max_points=3 points, got 4"),
    ],
)
def test_train_indices_are_checked(indices, message):
    with pytest.raises(ValueError, match=message):
        _check_indices(indices, 5, 3)


def test_train_indices_are_sorted_and_both_ends_of_the_range_are_allowed():
    assert _check_indices([4, 0, 2], 5, 3).tolist() == [0, 2, 4]
    assert _check_indices(np.array([1, 0], dtype=np.int8), 2, 2).tolist() == [0, 1]


def test_the_ensemble_is_the_held_out_weighted_mixture_of_its_members():
    X, y = _data()
    model = QSVREnsemble(sampler="exact", num_solutions=2, random_state=0, **OPTIONS).fit(X, y)
    assert len(model.members_) == 2 and sorted(np.concatenate(model.subsets_).tolist()) == list(range(5))
    v = model.member_weights_
    members = [m.predict(X) for m in model.members_]
    mean, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(mean, v[0] * members[0] + v[1] * members[1])
    samples = model.predict_samples(X)
    assert samples.shape == (4, 5)
    weights = np.concatenate([v[j] * model.members_[j].sample_weights_ for j in range(2)])
    np.testing.assert_allclose(std, np.sqrt(weights @ (samples - mean) ** 2))
    assert model.__sklearn_tags__().regressor_tags.poor_score is False
    assert QSVR().__sklearn_tags__().regressor_tags.poor_score is True


QUBO = dict(K=2, base=0.5, exponent_offset=0.0, epsilon=0.1, xi=0.01, gamma=0.1)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros(3), np.zeros(3), r"^X must be a 2-D array, got shape \(3,\)$"),
        (np.zeros((3, 1)), np.zeros((3, 1)), r"^y must have shape \(3,\) to match X, got \(3, 1\)$"),
        (np.zeros((1, 1)), np.zeros(1), "^the QUBO needs at least 2 training points, got 1$"),
        (np.array([[0.0], [np.inf]]), np.zeros(2), r"^X and y must be finite \(no NaN or inf\)$"),
        (np.zeros((2, 1)), np.array([0.0, np.nan]), r"^X and y must be finite \(no NaN or inf\)$"),
    ],
)
def test_the_qubo_builder_names_what_is_wrong(X, y, message):
    with pytest.raises(ValueError, match=message):
        build_svr_qubo(X, y, **QUBO)


def test_the_qubo_is_binary_over_0_to_2kn_with_no_offset():
    bqm = build_svr_qubo(np.array([[0.0], [1.0]]), np.array([0.0, 1.0]), **QUBO)
    assert bqm.vartype is dimod.BINARY and bqm.offset == 0.0
    assert sorted(bqm.variables) == list(range(8)) and bqm.num_interactions == 28
    # alpha_0's first bit (weight 1): h = epsilon - y_0 + M_pp = 0.1 - 0 + (0.5 + 0.01)
    assert bqm.get_linear(0) == pytest.approx(0.61)
    # alpha_0's bit and alpha_hat_0's bit of weight 1: 2 M_pq = 2 * (1)(-1)(0.5 + 0.01)
    assert bqm.get_quadratic(0, 4) == pytest.approx(-1.02)


def test_predicting_with_the_wrong_number_of_features_leaves_the_ensemble_as_fitted():
    X, y = _data()
    model = QSVREnsemble(sampler="exact", num_solutions=2, random_state=0, **OPTIONS).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :1])
    assert model.n_features_in_ == 2
    np.testing.assert_allclose(model.predict(X), model.predict(X.astype(np.float32)), rtol=1e-6)


def test_any_object_with_a_sample_method_is_a_sampler_and_its_chain_breaks_are_kept():
    class Plain:  # no dimod base class, no ``parameters``: nothing but sample()
        def sample(self, bqm, **kwargs):
            assert kwargs == {}
            return dimod.ExactSolver().sample(bqm)

    X, y = _data()
    plain = QSVR(sampler=Plain(), num_solutions=2, random_state=0, **OPTIONS).fit(X, y)
    exact = QSVR(sampler="exact", num_solutions=2, random_state=0, **OPTIONS).fit(X, y)
    np.testing.assert_allclose(plain.predict(X), exact.predict(X))
    logged = QSVR(sampler=LoggingExactSolver(), num_solutions=2, random_state=0, **OPTIONS).fit(X, y)
    assert logged.chain_break_fraction_ == pytest.approx(0.5)


def test_a_sampler_that_leaves_out_many_variables_is_told_the_first_five():
    bqm = dimod.BinaryQuadraticModel({v: 1.0 for v in range(8)}, {}, 0.0, "BINARY")
    only = dimod.BinaryQuadraticModel({0: 1.0}, {}, 0.0, "BINARY")

    class KeepsOne(dimod.ExactSolver):
        def sample(self, bqm, **kwargs):
            return super().sample(only)

    with pytest.raises(ValueError, match=r"variable\(s\) \[1, 2, 3, 4, 5\]$"):
        sample_qubo(bqm, KeepsOne(), num_reads=1, seed=None)
