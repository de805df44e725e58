"""The QUBO, decoding, clean-up, bias and combination of the QSVR, checked independently."""

from __future__ import annotations

import itertools
import math

import dimod
import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVR

from qhpo.qsvr import QSVR, QSVREnsemble, box_bound, build_svr_qubo
from qhpo.qsvr._bias import kkt_bias
from qhpo.qsvr._combine import combination_weights, unique_lowest
from qhpo.qsvr._decode import decode_coefficients, remove_overlap

PARAMS = dict(K=3, base=0.5, exponent_offset=0.005, epsilon=0.02, xi=0.01, gamma=0.1)


def energy_by_formula(bits, X, y, K, base, exponent_offset, epsilon, xi, gamma):
    """E of the SVR QUBO written out with plain loops, independent of the library."""
    N = len(y)
    alpha = [sum(base ** (i - exponent_offset) * bits[K * n + i] for i in range(K)) for n in range(N)]
    alpha_hat = [sum(base ** (i - exponent_offset) * bits[K * (N + n) + i] for i in range(K)) for n in range(N)]
    d = [alpha[n] - alpha_hat[n] for n in range(N)]
    energy = 0.0
    for n in range(N):
        for m in range(N):
            dist = sum((X[n][j] - X[m][j]) ** 2 for j in range(len(X[n])))
            energy += 0.5 * d[n] * d[m] * math.exp(-gamma * dist)
    energy += epsilon * sum(alpha[n] + alpha_hat[n] for n in range(N))
    energy -= sum(y[n] * d[n] for n in range(N))
    energy += xi * sum(d) ** 2
    return energy


def test_bqm_layout_and_size():
    rng = np.random.default_rng(0)
    bqm = build_svr_qubo(rng.random((20, 5)), rng.random(20), **PARAMS)
    assert bqm.vartype is dimod.BINARY
    assert set(bqm.variables) == set(range(120))
    assert bqm.num_interactions == 120 * 119 // 2


@pytest.mark.parametrize("seed, N, K, base, offset", [(0, 4, 3, 0.5, 0.005), (1, 3, 2, 2.0, 1.0), (2, 5, 1, 0.5, 0.0)])
def test_bqm_energy_equals_the_formula_for_random_bits(seed, N, K, base, offset):
    rng = np.random.default_rng(seed)
    X, y = rng.random((N, 3)), rng.random(N)
    params = dict(K=K, base=base, exponent_offset=offset, epsilon=0.05, xi=0.3, gamma=0.7)
    bqm = build_svr_qubo(X, y, **params)
    for _ in range(50):
        bits = rng.integers(0, 2, size=2 * K * N)
        sample = {p: int(bits[p]) for p in range(2 * K * N)}
        assert bqm.energy(sample) == pytest.approx(
            energy_by_formula(bits.tolist(), X.tolist(), y.tolist(), **params), abs=1e-10
        )


def test_exact_solver_optimum_equals_brute_force():
    rng = np.random.default_rng(3)
    X, y = rng.random((3, 2)), rng.random(3)
    params = dict(K=2, base=0.5, exponent_offset=0.0, epsilon=0.05, xi=0.1, gamma=1.0)
    M = 12
    brute = min(
        energy_by_formula(bits, X.tolist(), y.tolist(), **params) for bits in itertools.product((0, 1), repeat=M)
    )
    exact = dimod.ExactSolver().sample(build_svr_qubo(X, y, **params)).first.energy
    assert exact == pytest.approx(brute, abs=1e-10)
    # The QSVR with the exact solver keeps that optimum as its lowest-energy sample.
    model = QSVR(sampler="exact", combination="best", **params).fit(X, y)
    y_centred = (y - y.min()) / np.ptp(y)
    y_centred -= y_centred.mean()
    assert model.sample_energies_[0] == pytest.approx(
        min(
            energy_by_formula(bits, X.tolist(), y_centred.tolist(), **params)
            for bits in itertools.product((0, 1), repeat=M)
        ),
        abs=1e-10,
    )


def test_decode_follows_the_layout():
    N, K = 2, 3
    bits = np.zeros(2 * K * N)
    bits[K * 1 + 2] = 1  # alpha_1, bit 2
    bits[K * (N + 0) + 0] = 1  # alpha_hat_0, bit 0
    alpha, alpha_hat = decode_coefficients(bits, N, K, base=0.5, exponent_offset=0.0)
    np.testing.assert_allclose(alpha, [0.0, 0.25])
    np.testing.assert_allclose(alpha_hat, [1.0, 0.0])
    assert box_bound(K, 0.5, 0.0) == pytest.approx(1.75)


def test_remove_overlap_keeps_d_and_makes_coefficients_complementary():
    alpha, alpha_hat = np.array([0.75, 0.0, 0.5]), np.array([0.25, 0.5, 0.5])
    a, h = remove_overlap(alpha, alpha_hat)
    np.testing.assert_allclose(a - h, alpha - alpha_hat)
    assert np.all(a * h == 0) and np.all(a >= 0) and np.all(h >= 0)


def test_bias_uses_minus_epsilon_for_alpha_and_plus_epsilon_for_alpha_hat():
    residual = np.array([0.3, 0.1, 0.0])
    b = kkt_bias(np.array([0.5, 0.0, 0.0]), np.array([0.0, 0.5, 0.0]), residual, epsilon=0.1, C=1.0)
    assert b == pytest.approx(((0.3 - 0.1) + (0.1 + 0.1)) / 2)


def test_bias_without_free_support_vectors_is_the_midpoint_of_the_kkt_interval():
    residual = np.array([0.3, 0.1, 0.2])
    # Point 0 at the upper box of alpha: b <= 0.3 - 0.1; points 1, 2 inside the tube.
    b = kkt_bias(np.array([1.0, 0.0, 0.0]), np.zeros(3), residual, epsilon=0.1, C=1.0)
    assert b == pytest.approx(0.5 * (max(0.1 - 0.1, 0.2 - 0.1) + min(0.3 - 0.1, 0.1 + 0.1, 0.2 + 0.1)))
    # All coefficients zero (the case that never terminates in the reference code).
    assert kkt_bias(np.zeros(3), np.zeros(3), residual, epsilon=0.1, C=1.0) == pytest.approx(
        0.5 * ((0.3 - 0.1) + (0.1 + 0.1))
    )


def test_bias_reproduces_libsvm_intercept_for_the_exact_dual():
    rng = np.random.default_rng(5)
    X = rng.random((25, 3))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.standard_normal(25)
    y = (y - y.min()) / np.ptp(y)
    C = box_bound(3, 0.5, 0.005)
    svr = SVR(C=C, epsilon=0.02, gamma=0.5, tol=1e-8).fit(X, y)
    d = np.zeros(25)
    d[svr.support_] = svr.dual_coef_[0]
    residual = y - d @ rbf_kernel(X, X, gamma=0.5)
    b = kkt_bias(np.maximum(d, 0), np.maximum(-d, 0), residual, epsilon=0.02, C=C)
    assert b == pytest.approx(svr.intercept_[0], abs=1e-4)


def test_unique_lowest_drops_duplicates_and_copes_with_fewer_samples():
    bits = np.array([[1, 0], [0, 1], [1, 0], [1, 1]])
    energies = np.array([2.0, 1.0, 2.0, 3.0])
    kept, e = unique_lowest(bits, energies, 10)
    np.testing.assert_array_equal(kept, [[0, 1], [1, 0], [1, 1]])
    np.testing.assert_allclose(e, [1.0, 2.0, 3.0])
    assert unique_lowest(bits, energies, 2)[0].shape == (2, 2)


def test_combination_weights():
    np.testing.assert_allclose(combination_weights("best", n_samples=3), [1, 0, 0])
    np.testing.assert_allclose(combination_weights("mean", n_samples=4), [0.25] * 4)
    heldout_y = np.array([0.0, 1.0])
    predictions = np.array([[0.0, 1.0 + 0.1], [0.0, 1.0 + 0.2]])  # MSE 0.005 and 0.02
    np.testing.assert_allclose(combination_weights("heldout", predictions, heldout_y, n_samples=2), [0.8, 0.2])
    with pytest.raises(ValueError, match="combination must be one of"):
        combination_weights("r2", n_samples=2)


def test_qsvr_subsample_is_seeded_and_heldout_weights_use_the_other_points():
    rng = np.random.default_rng(0)
    X = rng.random((35, 2))
    y = X[:, 0] + X[:, 1] ** 2
    a = QSVR(sampler="steepest", num_reads=30, random_state=7).fit(X, y)
    b = QSVR(sampler="steepest", num_reads=30, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.train_indices_, b.train_indices_)
    np.testing.assert_allclose(a.predict(X), b.predict(X))
    assert a.train_indices_.size == 20 and a.combination_ == "heldout"
    assert a.heldout_residuals_.shape == (15,)
    assert np.all(a.sample_energies_[:-1] <= a.sample_energies_[1:])
    assert a.sample_weights_.sum() == pytest.approx(1.0)
    small = QSVR(sampler="steepest", num_reads=30, random_state=7).fit(X[:10], y[:10])
    assert small.combination_ == "mean" and small.heldout_residuals_ is None


def test_qsvr_with_a_sampler_object_and_return_std():
    rng = np.random.default_rng(1)
    X = rng.random((12, 2))
    model = QSVR(sampler=dimod.RandomSampler(), num_reads=50, random_state=0).fit(X, X[:, 0])
    mean, std = model.predict(X, return_std=True)
    assert mean.shape == std.shape == (12,) and np.all(std >= 0)
    assert model.n_solutions_ == 4


def test_qsvr_learns_a_smooth_function_with_simulated_annealing():
    X = np.linspace(0, 1, 20)[:, None]
    y = np.sin(2 * X[:, 0])
    model = QSVR(sampler="sa", num_reads=50, gamma=2.0, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9


def test_ensemble_uses_every_point_in_disjoint_subsets():
    rng = np.random.default_rng(2)
    X = rng.random((47, 2))
    y = X.sum(axis=1)
    model = QSVREnsemble(sampler="steepest", num_reads=20, random_state=0).fit(X, y)
    assert len(model.members_) == 3
    joined = np.concatenate(model.subsets_)
    assert sorted(joined.tolist()) == list(range(47))
    assert all(len(s) <= 20 for s in model.subsets_)
    assert model.member_weights_.sum() == pytest.approx(1.0)
    assert model.heldout_residuals_.shape == (47,)
    mean, std = model.predict(X, return_std=True)
    assert mean.shape == std.shape == (47,) and np.all(std > 0)


@pytest.mark.parametrize(
    "X, y, params, match",
    [
        (np.array([[np.nan], [1.0], [2.0]]), np.array([0.0, 1.0, 2.0]), {}, "NaN"),
        (np.array([[0.0]]), np.array([1.0]), {}, "at least 2"),
        (np.zeros((3, 1)), np.zeros(2), {}, "inconsistent numbers of samples"),
        (np.eye(3), np.arange(3.0), {"K": 0}, "'K' parameter of QSVR must be an int"),
        (np.eye(3), np.arange(3.0), {"K": 3.0}, "'K' parameter of QSVR must be an int"),
        (np.eye(3), np.arange(3.0), {"combination": "r2"}, "'combination' parameter of QSVR must be a str among"),
        (np.eye(3), np.arange(3.0), {"gamma": -1.0}, "'gamma' parameter of QSVR must be a float"),
        (np.eye(3), np.arange(3.0), {"sampler": "quantum"}, "'sampler' parameter of QSVR must be"),
    ],
)
def test_qsvr_bad_input(X, y, params, match):
    with pytest.raises(ValueError, match=match):
        QSVR(**{"sampler": "steepest", **params}).fit(X, y)


@pytest.mark.parametrize(
    "X, y, params, match",
    [
        (np.array([[np.nan], [1.0]]), np.array([0.0, 1.0]), {}, "finite"),
        (np.array([[0.0]]), np.array([1.0]), {}, "at least 2"),
        (np.zeros((3, 1)), np.zeros(2), {}, "must have shape"),
        (np.eye(3), np.arange(3.0), {"K": 0}, "K must be an integer >= 1"),
        (np.eye(3), np.arange(3.0), {"K": True}, "K must be an integer >= 1"),
    ],
)
def test_build_svr_qubo_bad_input(X, y, params, match):
    with pytest.raises(ValueError, match=match):
        build_svr_qubo(X, y, **{**PARAMS, **params})


def test_exact_solver_refuses_large_problems():
    X = np.random.default_rng(0).random((20, 2))
    with pytest.raises(ValueError, match="exact solver"):
        QSVR(sampler="exact").fit(X, X[:, 0])


def test_qsvr_copes_with_fewer_unique_samples_than_asked():
    rng = np.random.default_rng(4)
    X = rng.random((30, 2))
    model = QSVR(sampler="steepest", num_reads=1, num_solutions=4, random_state=0).fit(X, X[:, 0])
    assert model.n_solutions_ == 1 and model.sample_weights_.tolist() == [1.0]
    assert np.all(np.isfinite(model.predict(X)))
