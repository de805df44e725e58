"""The dense simulated annealer: exact optima on small problems, energies, seeding, vartypes."""

from __future__ import annotations

import math

import dimod
import numpy as np
import pytest

from qhpo.qsvr import build_svr_qubo
from qhpo.samplers import make_sampler
from qhpo.samplers._dense_sa import (
    DenseSimulatedAnnealingSampler,
    block_levels,
    collinear_blocks,
    default_beta_range,
    dense_qubo,
)


def _random_dense(n: int, vartype: str, seed: int) -> dimod.BinaryQuadraticModel:
    rng = np.random.default_rng(seed)
    labels = [f"v{i}" if i % 2 else (i, "x") for i in range(n)]  # mixed, non-integer labels
    linear = {v: rng.normal() for v in labels}
    quadratic = {(labels[i], labels[j]): rng.normal() for i in range(n) for j in range(i + 1, n)}
    return dimod.BinaryQuadraticModel(linear, quadratic, rng.normal(), vartype)


def _small_svr(N: int, K: int, seed: int) -> dimod.BinaryQuadraticModel:
    rng = np.random.default_rng(seed)
    return build_svr_qubo(
        rng.random((N, 3)), rng.random(N), K=K, base=0.5, exponent_offset=0.005, epsilon=0.02, xi=0.01, gamma=0.1
    )


@pytest.mark.parametrize("vartype", ["SPIN", "BINARY"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_exact_optimum_of_dense_random_bqm(vartype, seed):
    bqm = _random_dense(12, vartype, seed)
    exact = dimod.ExactSolver().sample(bqm).first.energy
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=20, num_sweeps=50, seed=seed)
    assert sampleset.first.energy == pytest.approx(exact, abs=1e-9)
    assert sampleset.vartype is bqm.vartype
    assert set(sampleset.variables) == set(bqm.variables)


@pytest.mark.parametrize("N,K,seed", [(2, 3, 0), (3, 2, 1), (2, 4, 2)])
def test_finds_exact_optimum_of_svr_qubo(N, K, seed):
    bqm = _small_svr(N, K, seed)
    exact = dimod.ExactSolver().sample(bqm).first.energy
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=10, num_sweeps=30, seed=seed)
    assert sampleset.first.energy == pytest.approx(exact, abs=1e-9)


@pytest.mark.slow
def test_parallel_tempering_finds_exact_optimum():
    bqm = _random_dense(14, "SPIN", 9)
    exact = dimod.ExactSolver().sample(bqm).first.energy
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=5, num_sweeps=20, num_replicas=6, seed=2)
    assert sampleset.first.energy == pytest.approx(exact, abs=1e-9)
    assert sampleset.info["num_replicas"] == 6


@pytest.mark.parametrize("vartype", ["SPIN", "BINARY"])
def test_reported_energies_are_the_bqm_energies(vartype):
    bqm = _random_dense(30, vartype, 7)
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=25, num_sweeps=20, seed=3)
    assert len(sampleset) == 25
    values = set(np.unique(sampleset.record.sample))
    assert values <= ({-1, 1} if vartype == "SPIN" else {0, 1})
    np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset), rtol=0, atol=1e-9)


def test_same_seed_same_samples_different_seed_different_samples():
    bqm = _random_dense(60, "SPIN", 4)  # a glassy model: short anneals end in many local minima
    sampler = DenseSimulatedAnnealingSampler()
    first = sampler.sample(bqm, num_reads=30, num_sweeps=2, seed=11)
    again = sampler.sample(bqm, num_reads=30, num_sweeps=2, seed=11)
    other = sampler.sample(bqm, num_reads=30, num_sweeps=2, seed=12)
    np.testing.assert_array_equal(first.record.sample, again.record.sample)
    assert not np.array_equal(first.record.sample, other.record.sample)
    # every read has its own random stream: more reads do not change the first ones
    more = sampler.sample(bqm, num_reads=40, num_sweeps=2, seed=11)
    np.testing.assert_array_equal(more.record.sample[:30], first.record.sample)


def test_linear_only_and_empty_models():
    linear = dimod.BinaryQuadraticModel({"a": 1.0, "b": -2.0, "c": 0.0}, {}, 0.5, "SPIN")
    sampleset = DenseSimulatedAnnealingSampler().sample(linear, num_reads=4, seed=0)
    assert sampleset.first.energy == pytest.approx(-2.5)
    assert sampleset.first.sample["a"] == -1 and sampleset.first.sample["b"] == 1
    empty = dimod.BinaryQuadraticModel("BINARY")
    sampleset = DenseSimulatedAnnealingSampler().sample(empty, num_reads=3)
    assert len(sampleset) == 3 and len(sampleset.variables) == 0


def test_collinear_blocks_are_the_coefficients_of_the_svr_qubo():
    N, K = 5, 3
    bqm = _small_svr(N, K, 5)
    _, J, _ = dense_qubo(bqm, list(range(2 * K * N)))
    blocks = collinear_blocks(J)
    expected = [sorted(list(range(K * n, K * n + K)) + list(range(K * (N + n), K * (N + n) + K))) for n in range(N)]
    assert sorted(blocks) == expected
    assert all(len(b) == 1 for b in collinear_blocks(J, max_block_bits=1))
    assert sorted(len(b) for b in collinear_blocks(J, max_block_bits=4)) == [2] * N + [4] * N
    random_J = dense_qubo(_random_dense(10, "BINARY", 0), list(_random_dense(10, "BINARY", 0).variables))[1]
    assert all(len(b) == 1 for b in collinear_blocks(random_J))


def test_duplicate_training_points_share_one_block_and_keep_the_optimum():
    X = np.array([[0.1, 0.2], [0.1, 0.2], [0.9, 0.4]])  # points 0 and 1 coincide
    bqm = build_svr_qubo(
        X, np.array([0.2, 0.4, 0.9]), K=2, base=0.5, exponent_offset=0.005, epsilon=0.02, xi=0.01, gamma=0.5
    )
    _, J, _ = dense_qubo(bqm, list(range(12)))
    assert sorted(len(b) for b in collinear_blocks(J)) == [4, 8]
    exact = dimod.ExactSolver().sample(bqm).first.energy
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=10, seed=0)
    assert sampleset.info["num_blocks"] == 2
    assert sampleset.first.energy == pytest.approx(exact, abs=1e-9)


def test_blocks_that_do_not_reproduce_the_couplings_are_refused():
    bqm = _random_dense(6, "BINARY", 3)
    h, J, _ = dense_qubo(bqm, list(bqm.variables))
    assert block_levels(h, J, [[0, 1, 2], [3], [4], [5]]) is None
    kappa, level_start, *_ = block_levels(h, J, [[i] for i in range(6)])
    np.testing.assert_array_equal(kappa, J)
    assert list(level_start) == [0, 2, 4, 6, 8, 10, 12]


def test_schedule_from_the_coefficients():
    h = np.array([1.0, -2.0, 0.0])
    assert default_beta_range(h, np.zeros((3, 3))) == pytest.approx((math.log(2) / 2, math.log(100) / 1))
    J = np.array([[0.0, 0.5, -4.0], [0.5, 0.0, 0.0], [-4.0, 0.0, 0.0]])
    # largest for bit 2: mean |0 - 4 / 2| = 2 plus three standard deviations 1.5 * 4 (bit 0: 6.80)
    hot, cold = default_beta_range(h, J)
    assert hot == pytest.approx(math.log(2) / 8.0)
    assert cold == pytest.approx(math.log(100) / 0.5)
    assert default_beta_range(np.zeros(2), np.zeros((2, 2))) == (1.0, 1.0)


def test_registered_as_qhpo_sa():
    sampler = make_sampler("qhpo-sa")
    assert isinstance(sampler, DenseSimulatedAnnealingSampler)
    assert sampler.sample_qubo({(0, 0): -1.0, (0, 1): 2.0, (1, 1): -1.0}, num_reads=5, seed=0).first.energy == -1.0


@pytest.mark.parametrize(
    "argument,value",
    [
        ("num_reads", 0),
        ("num_reads", 2.5),
        ("num_sweeps", -1),
        ("num_sweeps", True),
        ("seed", -1),
        ("seed", 2**64),
        ("seed", "x"),
        ("beta_range", (0.0, 1.0)),
        ("beta_range", (2.0, 1.0)),
        ("beta_range", "hot"),
        ("max_block_bits", 0),
        ("max_block_bits", 17),
        ("num_replicas", 0),
    ],
)
def test_bad_arguments_name_the_argument(argument, value):
    bqm = _random_dense(4, "SPIN", 0)
    with pytest.raises(ValueError, match=argument):
        DenseSimulatedAnnealingSampler().sample(bqm, **{argument: value})


def test_annealing_from_hot_to_cold_beats_a_fixed_hot_or_cold_temperature():
    # a 100-spin +-1 spin glass: the final descent alone leaves reads in poor local minima, so
    # what the schedule does before it shows; the heat-bath step must read the temperature and
    # the schedule must end cold
    rng = np.random.default_rng(0)
    bqm = dimod.BQM.from_ising(
        {}, {(i, j): float(rng.choice([-1.0, 1.0])) for i in range(100) for j in range(i + 1, 100)}
    )
    sampler = DenseSimulatedAnnealingSampler()

    def mean_energy(**kwargs):
        return float(sampler.sample(bqm, num_reads=100, num_sweeps=100, seed=1, **kwargs).record.energy.mean())

    annealed = mean_energy()
    hot = mean_energy(beta_range=(1e-4, 1e-4))
    quenched = mean_energy(beta_range=(5.0, 5.0))
    assert annealed < hot - 20 and annealed < quenched - 20, (annealed, hot, quenched)
