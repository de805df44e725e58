"""Simulated annealing for dense QUBOs, as a dimod sampler (registered as ``qhpo-sa``).

The BQM is converted to a QUBO over bits ``x`` (SPIN models through ``s = 2x - 1``) with

    E(x) = sum_i h_i x_i + sum_{i<j} J_ij x_i x_j + offset,

stored as a dense symmetric matrix ``J``.

Collinear blocks. Bits whose coupling rows are parallel, ``J_p. = lambda_p v`` outside the
pair (the bits of one binary-encoded integer, such as the bits of ``alpha_n`` and
``alpha_hat_n`` in the SVR QUBO), influence the rest of the problem only through one
number ``s = sum_p lambda_p x_p``. Single-bit flips cannot carry such an integer from
``011`` to ``100`` without climbing a large barrier, so these bits are grouped (up to
``max_block_bits``) into one variable whose levels are the distinct values of ``s``
(:func:`block_levels`). Without collinear bits every block is one bit.

Each read starts from uniformly random levels, makes ``num_sweeps`` heat-bath sweeps at
inverse temperatures ``beta_s`` spaced geometrically from ``beta_hot`` to ``beta_cold``,
then descends by moves of one block and joint moves of two blocks to a local minimum
(:mod:`qhpo.samplers._dense_sweeps` holds the compiled sweeps and their equations).

Temperature schedule, from the coefficients. In a uniformly random state the single-flip
change ``|f_i|`` of bit ``i`` has mean ``|h_i + sum_j J_ij / 2|`` and standard deviation
``sqrt(sum_j J_ij^2) / 2``, so

    dE_hot = max_i ( |h_i + sum_j J_ij / 2| + 3 sqrt(sum_j J_ij^2) / 2 )   (largest change, random state)
    dE_min = min { |h_i|, |J_ij| : nonzero }                            (smallest nonzero coefficient)
    beta_hot = ln(2) / dE_hot      (the largest change is accepted with probability 1/2)
    beta_cold = ln(100) / dE_min   (the smallest uphill change is accepted with probability 1/100)

The bound ``max_i (|h_i| + sum_j |J_ij|)`` used by other annealers assumes every coupling
pushes the same way; in dense problems with couplings of both signs it is far above any
change a state shows and wastes the hot sweeps (docs/annealer.md has the measurement).
"""

from __future__ import annotations

import math

import dimod
import numpy as np

from qhpo._checks import check_int
from qhpo.samplers._dense_sweeps import anneal, temper

#: Bits of the largest block (up to 2^16 levels).
_MAX_BLOCK_BITS = 16
# rows whose cosine is this close to +-1 count as parallel (float round-off of the QUBO builder)
_PARALLEL_TOLERANCE = 1e-9


def dense_qubo(bqm: dimod.BinaryQuadraticModel, variables: list) -> tuple[np.ndarray, np.ndarray, float]:
    """``(h, J, offset)`` of ``bqm`` as a BINARY model in the order of ``variables``."""
    binary = bqm if bqm.vartype is dimod.BINARY else bqm.change_vartype(dimod.BINARY, inplace=False)
    h, (rows, cols, values), offset = binary.to_numpy_vectors(variable_order=variables)
    n = len(variables)
    J = np.zeros((n, n))
    np.add.at(J, (rows, cols), values)
    J = J + J.T
    return np.asarray(h, dtype=float), J, float(offset)


def default_beta_range(h: np.ndarray, J: np.ndarray) -> tuple[float, float]:
    """``(beta_hot, beta_cold)`` from the coefficients (module docstring)."""
    abs_J = np.abs(np.triu(J, k=1))
    nonzero = np.concatenate([np.abs(h)[h != 0], abs_J[abs_J > 0]])
    if nonzero.size == 0:
        return 1.0, 1.0  # every state has the same energy: any temperature will do
    largest = float(np.max(np.abs(h + 0.5 * J.sum(axis=1)) + 1.5 * np.sqrt(np.einsum("ij,ij->i", J, J))))
    beta_hot = math.log(2.0) / largest
    beta_cold = math.log(100.0) / float(nonzero.min())
    return beta_hot, max(beta_hot, beta_cold)


def collinear_blocks(J: np.ndarray, max_block_bits: int = _MAX_BLOCK_BITS) -> list[list[int]]:
    """Groups of variables whose coupling rows are parallel outside the pair.

    Variables ``p`` and ``q`` are joined when ``|J_p . J_q| = |J_p'| |J_q'|`` (to
    round-off), where ``J_p'`` is row ``p`` without column ``q`` (the diagonal is zero, so
    the dot product already leaves out both columns). Connected groups larger than
    ``max_block_bits`` are cut into consecutive pieces. Variables without a partner form
    blocks of one.
    """
    n = J.shape[0]
    gram = J @ J.T
    norms2 = np.diag(gram)
    outside = np.sqrt(np.maximum(norms2[:, None] - J * J, 0.0) * np.maximum(norms2[None, :] - J * J, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(outside > 0.0, np.abs(gram) / np.where(outside > 0.0, outside, 1.0), 0.0)
    parallel = cosine > 1.0 - _PARALLEL_TOLERANCE
    np.fill_diagonal(parallel, False)
    label = np.full(n, -1)
    blocks: list[list[int]] = []
    for seed in range(n):
        if label[seed] >= 0:
            continue
        group = [seed]
        label[seed] = seed
        k = 0
        while k < len(group):
            for other in np.flatnonzero(parallel[group[k]]):
                if label[other] < 0:
                    label[other] = seed
                    group.append(int(other))
            k += 1
        group.sort()
        blocks.extend(group[i : i + max_block_bits] for i in range(0, len(group), max_block_bits))
    return blocks


def _lower_hull(s: np.ndarray, u: np.ndarray) -> list[int]:
    """Indices of the lower convex hull of the points ``(s, u)``, which are sorted by ``s``."""
    hull: list[int] = []
    for i in range(len(s)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b when it lies on or above the segment from a to i
            if (u[b] - u[a]) * (s[i] - s[a]) >= (u[i] - u[a]) * (s[b] - s[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def _levels(h: np.ndarray, J: np.ndarray, block: list[int], factor: np.ndarray):
    """``(s, u, pattern)`` of the levels of one block: each distinct value ``s(c)`` of its bit
    patterns with the lowest in-block energy ``u(c)`` among the patterns of that value."""
    g = len(block)
    patterns = np.arange(1 << g)
    bits = ((patterns[:, None] >> np.arange(g)[None, :]) & 1).astype(float)
    values = bits @ factor
    energies = bits @ h[block] + np.einsum("ck,km,cm->c", bits, np.triu(J[np.ix_(block, block)], k=1), bits)
    # equal values up to round-off are one level; keep its lowest-energy pattern
    scale = float(np.max(np.abs(values))) or 1.0
    keys = np.round(values / scale, 9)
    order = np.lexsort((energies, keys))
    keep = order[np.r_[True, keys[order][1:] != keys[order][:-1]]]
    return values[keep], energies[keep], patterns[keep]


def block_levels(h: np.ndarray, J: np.ndarray, blocks: list[list[int]]):
    """The problem over the levels of ``blocks`` (see :mod:`qhpo.samplers._dense_sweeps`).

    For block ``b`` with reference bit ``p0`` (largest row outside the block) every bit
    ``p`` gets the row factor ``lambda_p = J_p.J_p0 / |J_p0|^2`` (rows restricted to the
    columns outside the block), so that ``J_pq = lambda_p lambda_q kappa_ab`` for ``p`` in
    ``a`` and ``q`` in ``b``, with ``kappa_ab = J_{a0 b0}``. A bit pattern ``c`` of the block
    has the value ``s(c) = sum_p lambda_p c_p`` and the in-block energy
    ``u(c) = sum_p h_p c_p + sum_{p<q} J_pq c_p c_q``; of the patterns with equal value only
    the one of lowest ``u`` is kept, as the others can never be part of a minimum.

    Returns:
        ``(kappa, level_start, level_s, level_u, hull_start, hull, level_pattern)`` (``hull``:
        the levels on the lower convex hull of each block's points ``(s, u)``), or None when the blocks do
        not reproduce ``J`` to round-off (then the caller falls back to single bits).
    """
    n, B = J.shape[0], len(blocks)
    block_of = np.empty(n, dtype=np.int64)
    for b, block in enumerate(blocks):
        block_of[block] = b
    factor = np.ones(n)
    reference = np.empty(B, dtype=np.int64)
    level_start, level_s, level_u, level_pattern, hull_start, hull = [0], [], [], [], [0], []
    for b, block in enumerate(blocks):
        outside = block_of != b
        rows = J[np.ix_(block, outside)]
        norms2 = np.einsum("ij,ij->i", rows, rows)
        p0 = int(np.argmax(norms2))
        reference[b] = block[p0]
        if norms2[p0] > 0.0:
            factor[block] = rows @ rows[p0] / norms2[p0]
        values, energies, patterns = _levels(h, J, block, factor[block])
        level_s.append(values)
        level_u.append(energies)
        level_pattern.append(patterns)
        hull.extend(level_start[-1] + i for i in _lower_hull(values, energies))
        hull_start.append(len(hull))
        level_start.append(level_start[-1] + len(values))
    kappa = J[np.ix_(reference, reference)].copy()
    np.fill_diagonal(kappa, 0.0)
    rebuilt = np.outer(factor, factor) * kappa[np.ix_(block_of, block_of)]
    across = block_of[:, None] != block_of[None, :]
    if np.max(np.abs(np.where(across, rebuilt - J, 0.0)), initial=0.0) > 1e-9 * max(1.0, float(np.max(np.abs(J)))):
        return None
    return (
        kappa,
        np.asarray(level_start, dtype=np.int64),
        np.concatenate(level_s),
        np.concatenate(level_u),
        np.asarray(hull_start, dtype=np.int64),
        np.asarray(hull, dtype=np.int64),
        np.concatenate(level_pattern),
    )


class DenseSimulatedAnnealingSampler(dimod.Sampler):
    """Simulated annealing of dense QUBOs with many reads compiled in one loop.

    Every read anneals from random bits through ``num_sweeps`` sweeps on a geometric
    inverse-temperature schedule derived from the coefficients, updating the bits of a
    binary-encoded integer together, and ends in a local minimum. Energies in the returned
    sample set are computed from ``bqm`` itself. The same ``seed`` gives the same samples.

    Example:
        >>> import dimod
        >>> bqm = dimod.BinaryQuadraticModel({"a": -1.0, "b": -1.0}, {("a", "b"): -2.0}, 0.0, "SPIN")
        >>> sampleset = DenseSimulatedAnnealingSampler().sample(bqm, num_reads=10, seed=1)
        >>> float(sampleset.first.energy)
        -4.0

    Args (of :meth:`sample`):
        num_reads: Independent anneals (default 1).
        num_sweeps: Sweeps per read, or per replica with ``num_replicas > 1`` (default 30).
        beta_range: ``(beta_hot, beta_cold)``; default from the coefficients.
        seed: Integer seed in ``[0, 2**64)``; None draws one from the operating system.
        max_block_bits: Largest group of collinear bits updated together (default 12, the
            2K bits of one SVR coefficient pair up to K = 6; at most 16; 1 turns blocks off).
        num_replicas: 1 (default) anneals; more runs parallel tempering with this many
            temperatures from ``beta_hot`` to ``beta_cold`` (spaced geometrically, reported
            as ``info["beta_ladder"]``) for every read.
    """

    parameters = {
        "num_reads": [],
        "num_sweeps": [],
        "beta_range": [],
        "seed": [],
        "max_block_bits": [],
        "num_replicas": [],
    }
    properties: dict = {}

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        *,
        num_reads: int = 1,
        num_sweeps: int = 30,
        beta_range: tuple[float, float] | None = None,
        seed: int | None = None,
        max_block_bits: int = 12,
        num_replicas: int = 1,
        **kwargs,
    ) -> dimod.SampleSet:
        self.remove_unknown_kwargs(**kwargs)
        num_reads = check_int("num_reads", num_reads, least=1)
        num_sweeps = check_int("num_sweeps", num_sweeps, least=1)
        max_block_bits = check_int("max_block_bits", max_block_bits, least=1, most=_MAX_BLOCK_BITS)
        num_replicas = check_int("num_replicas", num_replicas, least=1)
        if seed is not None:
            seed = check_int("seed", seed, least=0, most=2**64 - 1)
        if beta_range is not None:
            beta_hot, beta_cold = _checked_beta_range(beta_range)

        variables = list(bqm.variables)
        n = len(variables)
        if n == 0:
            return dimod.SampleSet.from_samples_bqm((np.empty((num_reads, 0), dtype=np.int8), []), bqm)
        h, J, _ = dense_qubo(bqm, variables)
        if beta_range is None:
            beta_hot, beta_cold = default_beta_range(h, J)
        blocks = collinear_blocks(J, max_block_bits)
        model = block_levels(h, J, blocks)
        if model is None:
            blocks = [[i] for i in range(n)]
            model = block_levels(h, J, blocks)
        kappa, level_start, level_s, level_u, hull_start, hull, level_pattern = model
        problem = (kappa, level_start, level_s, level_u, hull_start, hull)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**64)
        streams = np.random.SeedSequence(int(seed)).generate_state(num_reads, dtype=np.uint64) | np.uint64(1)
        # energy decreases below round-off of the fields are not moves
        tol = 1e-12 * max(1.0, float(np.max(np.abs(h) + np.abs(J).sum(axis=1))))
        levels = np.empty((num_reads, len(blocks)), dtype=np.int32)
        if num_replicas == 1:
            betas = np.geomspace(beta_hot, beta_cold, num_sweeps)
            anneal(*problem, betas, streams, tol, True, levels)
        else:
            betas = np.geomspace(beta_hot, beta_cold, num_replicas)  # the ladder: one temperature per replica
            temper(*problem, betas, num_sweeps, streams, tol, True, levels)
        bits = _bits(levels, blocks, level_pattern, n)
        samples = bits if bqm.vartype is dimod.BINARY else (2 * bits - 1).astype(np.int8)
        info = {
            "beta_range": (float(beta_hot), float(beta_cold)),
            "num_sweeps": num_sweeps,
            "num_replicas": num_replicas,
            "num_blocks": len(blocks),
            "seed": int(seed),
        }
        if num_replicas > 1:
            info["beta_ladder"] = [float(b) for b in betas]
        return dimod.SampleSet.from_samples_bqm((samples, variables), bqm, info=info)


def _checked_beta_range(beta_range) -> tuple[float, float]:
    """``(beta_hot, beta_cold)`` of a ``beta_range`` argument; ``ValueError`` naming a bad one."""
    try:
        beta_hot, beta_cold = (float(b) for b in beta_range)
    except (TypeError, ValueError):
        raise ValueError(f"beta_range must be a pair (beta_hot, beta_cold), got {beta_range!r}") from None
    if not (0.0 < beta_hot <= beta_cold < math.inf):
        raise ValueError(f"beta_range must satisfy 0 < beta_hot <= beta_cold < inf, got {beta_range!r}")
    return beta_hot, beta_cold


def _bits(levels: np.ndarray, blocks: list[list[int]], level_pattern: np.ndarray, n: int) -> np.ndarray:
    """The bits of each read from the level of each of its blocks."""
    bits = np.empty((len(levels), n), dtype=np.int8)
    for b, block in enumerate(blocks):
        pattern = level_pattern[levels[:, b]]
        bits[:, block] = (pattern[:, None] >> np.arange(len(block))[None, :]) & 1
    return bits
