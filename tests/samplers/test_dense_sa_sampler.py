"""The dense annealer's parts checked one by one: the dense QUBO of a BQM, the levels of a
block and their lower hull, what ``sample`` reports in its info, and the edges of its arguments."""

from __future__ import annotations

import itertools
import math

import dimod
import numpy as np
import pytest

from qhpo.qsvr import build_svr_qubo
from qhpo.samplers._dense_sa import (
    DenseSimulatedAnnealingSampler,
    _levels,
    _lower_hull,
    block_levels,
    collinear_blocks,
    default_beta_range,
    dense_qubo,
)


def _bqm(vartype: str) -> dimod.BinaryQuadraticModel:
    rng = np.random.default_rng(7)
    linear = {i: float(rng.normal()) for i in range(5)}
    quadratic = {(i, j): float(rng.normal()) for i in range(5) for j in range(i + 1, 5) if (i + j) % 3}
    return dimod.BinaryQuadraticModel(linear, quadratic, 0.75, vartype)


@pytest.mark.parametrize("vartype", ["BINARY", "SPIN"])
def test_the_dense_qubo_gives_the_bqm_energy_of_every_state(vartype):
    bqm = _bqm(vartype)
    order = [3, 1, 4, 0, 2]
    h, J, offset = dense_qubo(bqm, order)
    np.testing.assert_array_equal(J, J.T)
    assert np.all(np.diag(J) == 0)
    for bits in itertools.product([0, 1], repeat=5):
        x = np.array(bits, dtype=float)
        state = dict(zip(order, bits if vartype == "BINARY" else [2 * b - 1 for b in bits], strict=True))
        assert h @ x + x @ np.triu(J, k=1) @ x + offset == pytest.approx(bqm.energy(state))


def test_info_reports_the_schedule_sweeps_blocks_and_seed():
    bqm = _bqm("BINARY")
    h, J, _ = dense_qubo(bqm, list(bqm.variables))
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=3, num_sweeps=7, seed=11)
    assert sampleset.info == {
        "beta_range": default_beta_range(h, J),
        "num_sweeps": 7,
        "num_replicas": 1,
        "num_blocks": len(collinear_blocks(J, 12)),
        "seed": 11,
    }
    assert len(sampleset) == 3
    np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset))
    given = DenseSimulatedAnnealingSampler().sample(bqm, beta_range=(0.5, 0.5), max_block_bits=1, num_replicas=2)
    assert given.info["beta_range"] == (0.5, 0.5) and given.info["num_replicas"] == 2
    assert given.info["num_blocks"] == 5 and len(given) == 1


def test_without_a_seed_one_is_drawn_and_reported():
    bqm = _bqm("SPIN")
    seeds = {DenseSimulatedAnnealingSampler().sample(bqm).info["seed"] for _ in range(3)}
    assert len(seeds) == 3 and all(isinstance(s, int) and 0 <= s < 2**64 for s in seeds)


def test_the_edges_of_the_arguments_are_accepted():
    bqm = _bqm("BINARY")
    sampler = DenseSimulatedAnnealingSampler()
    for kwargs in (dict(seed=0), dict(seed=2**64 - 1), dict(max_block_bits=16), dict(num_sweeps=1, num_reads=1)):
        sampleset = sampler.sample(bqm, **kwargs)
        np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset))
    assert sampler.sample(bqm, seed=2**64 - 1).info["seed"] == 2**64 - 1


@pytest.mark.parametrize(
    ("beta_range", "message"),
    [
        ("hot", "beta_range must be a pair (beta_hot, beta_cold), got 'hot'"),
        ((1.0, 2.0, 3.0), "beta_range must be a pair (beta_hot, beta_cold), got (1.0, 2.0, 3.0)"),
        ((0.0, 1.0), "beta_range must satisfy 0 < beta_hot <= beta_cold < inf, got (0.0, 1.0)"),
        ((2.0, 1.0), "beta_range must satisfy 0 < beta_hot <= beta_cold < inf, got (2.0, 1.0)"),
        ((1.0, math.inf), "beta_range must satisfy 0 < beta_hot <= beta_cold < inf, got (1.0, inf)"),
    ],
)
def test_a_bad_beta_range_is_named_with_its_value(beta_range, message):
    with pytest.raises(ValueError) as error:
        DenseSimulatedAnnealingSampler().sample(_bqm("BINARY"), beta_range=beta_range)
    assert str(error.value) == message


def test_the_lower_hull_drops_points_on_or_above_its_segments():
    s = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    u = np.array([0.0, -1.0, -1.5, -2.0, 0.0])  # (2, -1.5) lies on the segment from (1, -1) to (3, -2)
    assert _lower_hull(s, u) == [0, 1, 3, 4]
    assert _lower_hull(s + 10.0, u + 5.0) == [0, 1, 3, 4]  # the same points moved: the same hull
    assert _lower_hull(2.0 * s, 2.0 * u) == [0, 1, 3, 4]  # and stretched
    assert _lower_hull(s + 10.0, u + 5.0 + np.array([0, 0, -1e-6, 0, 0])) == [0, 1, 2, 3, 4]
    assert _lower_hull(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0])) == [0, 2]
    assert _lower_hull(np.array([0.0]), np.array([3.0])) == [0]


def test_each_level_of_a_block_keeps_its_lowest_energy_pattern():
    rng = np.random.default_rng(3)
    h = rng.normal(size=4)
    J = rng.normal(size=(4, 4))
    J = np.triu(J, k=1) + np.triu(J, k=1).T
    block, factor = [0, 2, 3], np.array([1.0, 2.0, 3.0])  # patterns 011 and 100 both have value 3
    values, energies, patterns = _levels(h, J, block, factor)
    best: dict[float, tuple[float, int]] = {}
    for pattern in range(8):
        bits = np.array([(pattern >> i) & 1 for i in range(3)], dtype=float)
        value = float(bits @ factor)
        energy = float(bits @ h[block] + bits @ np.triu(J[np.ix_(block, block)], k=1) @ bits)
        if value not in best or energy < best[value][0]:
            best[value] = (energy, pattern)
    assert values.tolist() == sorted(best)
    np.testing.assert_allclose(energies, [best[v][0] for v in sorted(best)])
    assert patterns.tolist() == [best[v][1] for v in sorted(best)]


def _svr_qubo(scale: float = 1.0) -> dimod.BinaryQuadraticModel:
    rng = np.random.default_rng(4)
    bqm = build_svr_qubo(
        rng.random((3, 2)), rng.random(3), K=2, base=0.5, exponent_offset=0.005, epsilon=0.02, xi=0.01, gamma=0.1
    )
    bqm.scale(scale)
    return bqm


def test_each_block_lists_its_levels_and_their_lower_hull():
    bqm = _svr_qubo()
    h, J, _ = dense_qubo(bqm, list(range(12)))
    blocks = collinear_blocks(J)
    kappa, level_start, level_s, level_u, hull_start, hull, _ = block_levels(h, J, blocks)
    assert level_start[0] == 0 and hull_start[0] == 0
    assert level_start[-1] == len(level_s) == len(level_u) and hull_start[-1] == len(hull)
    for b in range(len(blocks)):
        s = level_s[level_start[b] : level_start[b + 1]]
        u = level_u[level_start[b] : level_start[b + 1]]
        expected = [level_start[b] + i for i in _lower_hull(s, u)]
        assert hull[hull_start[b] : hull_start[b + 1]].tolist() == expected


def test_blocks_are_kept_when_every_coupling_is_small():
    # scaled by 1/1000 every row of couplings is far below 1 in norm: the blocks still
    # reproduce the couplings, so the sampler keeps one block per training point
    bqm = _svr_qubo(1e-3)
    h, J, _ = dense_qubo(bqm, list(range(12)))
    assert np.max(np.einsum("ij,ij->i", J, J)) < 1.0
    assert block_levels(h, J, collinear_blocks(J)) is not None
    assert DenseSimulatedAnnealingSampler().sample(bqm, num_reads=2, seed=0).info["num_blocks"] == 3


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("num_reads", "num_reads must be an integer >= 1, got 0"),
        ("num_sweeps", "num_sweeps must be an integer >= 1, got 0"),
        ("max_block_bits", "max_block_bits must be an integer in [1, 16], got 0"),
        ("num_replicas", "num_replicas must be an integer >= 1, got 0"),
    ],
)
def test_a_bad_count_is_named_word_for_word(argument, message):
    with pytest.raises(ValueError) as error:
        DenseSimulatedAnnealingSampler().sample(_bqm("BINARY"), **{argument: 0})
    assert str(error.value) == message


def test_thirty_sweeps_by_default():
    assert DenseSimulatedAnnealingSampler().sample(_bqm("BINARY"), seed=0).info["num_sweeps"] == 30


def _exact_minimum(bqm: dimod.BinaryQuadraticModel) -> float:
    return float(dimod.ExactSolver().sample(bqm).first.energy)


def test_blocks_of_nearly_parallel_rows_fall_back_to_single_bits_and_keep_the_optimum():
    # bits 0 and 1 have rows that are parallel to within the grouping tolerance (cosine
    # 1 - 1e-13) but differ by 1e-6 in one coupling: far more than the rebuild's round-off
    rng = np.random.default_rng(3)
    n = 6
    J = np.zeros((n, n))
    row = rng.normal(size=n - 2)
    J[0, 2:] = row
    J[1, 2:] = 2.0 * row + np.r_[1e-6, np.zeros(n - 3)]
    J[0, 1] = 0.7
    J[2:, 2:] = np.triu(rng.normal(size=(n - 2, n - 2)), k=1)
    J = np.triu(J, k=1)
    J = J + J.T
    h = rng.normal(size=n)
    assert [0, 1] in collinear_blocks(J, 12)  # grouped by the cosine test ...
    assert block_levels(h, J, collinear_blocks(J, 12)) is None  # ... but the blocks do not reproduce J
    bqm = dimod.BinaryQuadraticModel.from_qubo({(i, j): J[i, j] for i in range(n) for j in range(i + 1, n)})
    bqm.add_linear_from({i: h[i] for i in range(n)})
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=20, seed=4)
    assert sampleset.info["num_blocks"] == n  # one bit per block
    np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset))
    assert sampleset.first.energy == pytest.approx(_exact_minimum(bqm), abs=1e-9)


@pytest.mark.parametrize("num_replicas", [1, 3])
def test_the_final_descent_moves_two_blocks_at_once_out_of_a_single_move_minimum(num_replicas):
    # E = x0 + x1 - 3 x0 x1: (0, 0) is a minimum for every single flip (each costs 1), the
    # ground state (1, 1) is -1. Annealed cold (no uphill move is ever taken), the reads that
    # start at (0, 0) stay there unless the descent tries the joint move of both bits.
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: 1.0}, {(0, 1): -3.0}, 0.0, "BINARY")
    sampler = DenseSimulatedAnnealingSampler()
    sampleset = sampler.sample(
        bqm, num_reads=200, num_sweeps=1, beta_range=(80.0, 80.0), seed=5, num_replicas=num_replicas
    )
    assert sampleset.info["num_blocks"] == 2  # the two bits are not grouped: no move of a block covers both
    assert set(sampleset.record.energy.tolist()) == {-1.0}


def test_tempering_spaces_its_ladder_geometrically_from_hot_to_cold():
    bqm = _bqm("BINARY")
    sampleset = DenseSimulatedAnnealingSampler().sample(bqm, beta_range=(0.1, 10.0), num_replicas=3, seed=2)
    assert sampleset.info["beta_ladder"] == pytest.approx([0.1, 1.0, 10.0])
    h, J, _ = dense_qubo(bqm, list(bqm.variables))
    default = DenseSimulatedAnnealingSampler().sample(bqm, num_replicas=4, seed=2).info["beta_ladder"]
    hot, cold = default_beta_range(h, J)
    assert default == pytest.approx(list(np.geomspace(hot, cold, 4))) and default[0] == hot and default[-1] == cold
    two = DenseSimulatedAnnealingSampler().sample(bqm, beta_range=(0.5, 2.0), num_replicas=2, seed=2)
    assert two.info["beta_ladder"] == pytest.approx([0.5, 2.0])  # the smallest ladder: hot and cold
    assert "beta_ladder" not in DenseSimulatedAnnealingSampler().sample(bqm, seed=2).info  # annealing has no ladder
