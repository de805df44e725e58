"""Compiled Monte Carlo sweeps of the dense simulated annealer.

The problem is a QUBO over bits ``x_i`` in {0, 1} with energy

    E(x) = sum_i h_i x_i + sum_{i<j} J_ij x_i x_j,      J symmetric, J_ii = 0.

Every read keeps its local fields ``f_i = h_i + sum_j J_ij x_j``; flipping bit ``i``
changes the energy by ``dE_i = (1 - 2 x_i) f_i`` and every field by ``f_j += (1 - 2 x_i) J_ij``
(one contiguous row of ``J``, O(n)), so a sweep costs O(n) tests plus O(n) per accepted flip.

Variables are visited in blocks (see :func:`qhpo.samplers._dense_sa.collinear_blocks`). A
block of one bit gets a Metropolis step: accept with probability ``min(1, exp(-beta dE_i))``.
A block ``B`` of ``g > 1`` bits gets a heat-bath step over all ``2^g`` configurations ``c``:

    E_B(c) = sum_{k in B} c_k e_k + T_B[c],      e_k = f_k - sum_{m in B} J_km x_m,

with ``T_B[c] = sum_{k<m in B} J_km c_k c_m`` tabulated once, and ``c`` is drawn with
probability proportional to ``exp(-beta E_B(c))``. The configurations are enumerated in
Gray-code order so that each costs O(1).

Each read draws its random numbers from its own xorshift64* stream, so the result of a
read depends only on its seed and not on how many reads run or in which order.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# exp(-40) ~ 4e-18: moves this far uphill are never taken, so their random draw is skipped
_UPHILL_CUTOFF = 40.0


@nb.njit(cache=True, inline="always")
def _uniform(streams, r):
    """Next uniform double in [0, 1) of stream ``r`` (xorshift64*)."""
    s = streams[r]
    s ^= s >> np.uint64(12)
    s ^= s << np.uint64(25)
    s ^= s >> np.uint64(27)
    streams[r] = s
    return ((s * np.uint64(2685821657736338717)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True, inline="always")
def _flip(x, f, J, i, n):
    sign = 1.0 if x[i] == 0 else -1.0
    x[i] = 1 - x[i]
    for j in range(n):
        f[j] += sign * J[i, j]


@nb.njit(cache=True)
def _block_energies(x, f, J, vars_, v0, g, table, t0, E):
    """Fill ``E[c]`` with ``E_B(c)`` for every configuration of the block; return the current one."""
    cur = 0
    for k in range(g):
        if x[vars_[v0 + k]]:
            cur |= 1 << k
    # e_k: the field on bit k from outside the block, kept in E's tail (E is long enough)
    ext0 = 1 << g
    for k in range(g):
        i = vars_[v0 + k]
        e_k = f[i]
        for m in range(g):
            if (cur >> m) & 1:
                e_k -= J[i, vars_[v0 + m]]
        E[ext0 + k] = e_k
    lin = 0.0
    E[0] = table[t0]
    for c in range(1, ext0):
        k = 0
        while not (c >> k) & 1:
            k += 1
        gray = c ^ (c >> 1)
        if (gray >> k) & 1:
            lin += E[ext0 + k]
        else:
            lin -= E[ext0 + k]
        E[gray] = lin + table[t0 + gray]
    return cur


@nb.njit(cache=True)
def _sweep(x, f, J, beta, starts, vars_, table_starts, table, E, streams, r, n):
    cutoff = _UPHILL_CUTOFF / beta
    for b in range(starts.shape[0] - 1):
        v0 = starts[b]
        g = starts[b + 1] - v0
        if g == 1:
            i = vars_[v0]
            dE = f[i] if x[i] == 0 else -f[i]
            if dE > 0.0 and (dE > cutoff or _uniform(streams, r) >= np.exp(-beta * dE)):
                continue
            _flip(x, f, J, i, n)
            continue
        cur = _block_energies(x, f, J, vars_, v0, g, table, table_starts[b], E)
        size = 1 << g
        emin = E[0]
        for c in range(1, size):
            if E[c] < emin:
                emin = E[c]
        total = 0.0
        for c in range(size):
            d = E[c] - emin
            w = np.exp(-beta * d) if d < cutoff else 0.0
            E[c] = w
            total += w
        u = _uniform(streams, r) * total
        new = size - 1
        acc = 0.0
        for c in range(size):
            acc += E[c]
            if u < acc:
                new = c
                break
        diff = new ^ cur
        for k in range(g):
            if (diff >> k) & 1:
                _flip(x, f, J, vars_[v0 + k], n)


@nb.njit(cache=True)
def _descend(x, f, J, starts, vars_, table_starts, table, E, tol, n):
    """Greedy block moves until none lowers the energy by more than ``tol``."""
    changed = True
    while changed:
        changed = False
        for b in range(starts.shape[0] - 1):
            v0 = starts[b]
            g = starts[b + 1] - v0
            if g == 1:
                i = vars_[v0]
                dE = f[i] if x[i] == 0 else -f[i]
                if dE < -tol:
                    _flip(x, f, J, i, n)
                    changed = True
                continue
            cur = _block_energies(x, f, J, vars_, v0, g, table, table_starts[b], E)
            new = cur
            for c in range(1 << g):
                if E[c] < E[new]:
                    new = c
            if E[new] < E[cur] - tol:
                diff = new ^ cur
                for k in range(g):
                    if (diff >> k) & 1:
                        _flip(x, f, J, vars_[v0 + k], n)
                changed = True


@nb.njit(cache=True)
def anneal(h, J, betas, starts, vars_, table_starts, table, streams, tol, x):
    """Anneal every row of ``x`` (filled here from a random start) through ``betas``, then descend.

    Args:
        h: Linear biases, shape ``(n,)``.
        J: Symmetric couplings with a zero diagonal, shape ``(n, n)``.
        betas: Inverse temperature of each sweep, shape ``(S,)``.
        starts, vars_: Block ``b`` holds the variables ``vars_[starts[b]:starts[b+1]]``.
        table_starts, table: ``T_B`` of block ``b`` is ``table[table_starts[b]:][:2^g]``.
        streams: One nonzero xorshift64* state per read, shape ``(R,)``; advanced in place.
        tol: Smallest energy decrease the final descent acts on.
        x: Output samples, shape ``(R, n)``, int8.
    """
    R, n = x.shape
    f = np.empty(n)
    E = np.empty(table.shape[0] + 64)
    for r in range(R):
        xr = x[r]
        for i in range(n):
            xr[i] = 1 if _uniform(streams, r) < 0.5 else 0
        for j in range(n):
            f[j] = h[j]
        for i in range(n):
            if xr[i]:
                for j in range(n):
                    f[j] += J[i, j]
        for s in range(betas.shape[0]):
            _sweep(xr, f, J, betas[s], starts, vars_, table_starts, table, E, streams, r, n)
        _descend(xr, f, J, starts, vars_, table_starts, table, E, tol, n)
