"""Compiled Monte Carlo sweeps of the dense simulated annealer, in block-level space.

The sampler (:mod:`qhpo.samplers._dense_sa`) rewrites the QUBO as a problem over blocks
``b`` of collinear bits. Block ``b`` takes one of its levels ``l``; level ``l`` has the
scalar value ``s_l`` (the block's bits weighted by their row factors) and the in-block
energy ``u_l`` (lowest in-block energy of the bit patterns with that value). The energy is

    E(l) = sum_b u_b(l_b) + sum_{a<b} kappa_ab s_a(l_a) s_b(l_b),

kept through the block fields ``phi_b = sum_a kappa_ba s_a(l_a)``: moving block ``b`` from
level ``l`` to ``m`` changes the energy by ``u_m - u_l + (s_m - s_l) phi_b`` and every field
by ``phi_a += kappa_ab (s_m - s_l)`` (one row of ``kappa``, O(B)). A single bit is a block
with levels ``s = 0, 1`` and ``u = 0, h_i``, so a problem without collinear bits is the
plain QUBO with ``kappa = J``.

A sweep visits every block once and draws its new level from the heat-bath distribution
``P(m) ~ exp(-beta (u_m + s_m phi_b))``. The final descent takes every move of one block,
and every joint move of two blocks, that lowers the energy, until none is left.

Each read draws its random numbers from its own xorshift64* stream, so the result of a
read depends only on its seed and not on how many reads run or in which order. The entry
points release the GIL, so a fit in a background thread does not stall the caller.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# exp(-40) ~ 4e-18: levels this far above the lowest are never drawn, so exp is skipped
_UPHILL_CUTOFF = 40.0


@nb.njit(cache=True)
def _uniform(streams, r):
    """Next uniform double in [0, 1) of stream ``r`` (xorshift64*)."""
    s = streams[r]
    s ^= s >> np.uint64(12)
    s ^= s << np.uint64(25)
    s ^= s >> np.uint64(27)
    streams[r] = s
    return ((s * np.uint64(2685821657736338717)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True)
def _move(level, phi, kappa, level_s, b, old, new, B):
    """Put block ``b`` (now at global level index ``old``) on level ``new``; update the fields."""
    ds = level_s[new] - level_s[old]
    level[b] = new
    if ds != 0.0:
        for a in range(B):
            phi[a] += kappa[b, a] * ds


@nb.njit(cache=True)
def _start(kappa, level_start, level_s, level_u, level, phi, streams, r):
    """Uniformly random levels and their fields; returns their energy (without offset)."""
    B = level.shape[0]
    for b in range(B):
        count = level_start[b + 1] - level_start[b]
        level[b] = level_start[b] + min(int(_uniform(streams, r) * count), count - 1)
    for a in range(B):
        phi[a] = 0.0
    for b in range(B):
        s = level_s[level[b]]
        if s != 0.0:
            for a in range(B):
                phi[a] += kappa[b, a] * s
    energy = 0.0
    for b in range(B):
        energy += level_u[level[b]] + 0.5 * level_s[level[b]] * phi[b]
    return energy


@nb.njit(cache=True)
def _sweep(kappa, level_start, level_s, level_u, level, phi, beta, weights, streams, r):
    """One heat-bath pass over all blocks at inverse temperature ``beta``; returns the energy change."""
    B = level.shape[0]
    cutoff = _UPHILL_CUTOFF / beta
    change = 0.0
    for b in range(B):
        first, last = level_start[b], level_start[b + 1]
        field = phi[b]
        low = np.inf
        for m in range(first, last):
            e = level_u[m] + level_s[m] * field
            weights[m - first] = e
            if e < low:
                low = e
        total = 0.0
        for m in range(last - first):
            d = weights[m] - low
            w = np.exp(-beta * d) if d < cutoff else 0.0
            weights[m] = w
            total += w
        u = _uniform(streams, r) * total
        new = last - 1
        acc = 0.0
        for m in range(last - first):
            acc += weights[m]
            if u < acc:
                new = first + m
                break
        old = level[b]
        if new != old:
            change += level_u[new] - level_u[old] + (level_s[new] - level_s[old]) * field
            _move(level, phi, kappa, level_s, b, old, new, B)
    return change


@nb.njit(cache=True, inline="always")
def _lowest(hull, h0, h1, level_s, level_u, field, p):
    """Index into ``hull[h0:h1]`` of the lowest ``u + s field``, walking from ``p``.

    Along the lower convex hull of the points ``(s, u)`` this energy is unimodal, so a
    walk from any start reaches the minimum; from the previous answer it takes few steps.
    """
    here = level_u[hull[p]] + level_s[hull[p]] * field
    while p + 1 < h1:
        right = level_u[hull[p + 1]] + level_s[hull[p + 1]] * field
        if right > here:
            break
        p, here = p + 1, right
    while p > h0:
        left = level_u[hull[p - 1]] + level_s[hull[p - 1]] * field
        if left >= here:
            break
        p, here = p - 1, left
    return p


@nb.njit(cache=True)
def _descend(kappa, level_start, level_s, level_u, hull_start, hull, level, phi, tol, pairs):
    """Greedy moves of one block, then of two blocks jointly, until none lowers E by more than ``tol``.

    Only levels on the lower convex hull of a block's points ``(s, u)`` can minimise
    ``u + s phi`` for some field ``phi``, so the moves go to hull levels only.
    """
    B = level.shape[0]
    changed = True
    while changed:
        changed = False
        for b in range(B):
            old = level[b]
            p = _lowest(hull, hull_start[b], hull_start[b + 1], level_s, level_u, phi[b], hull_start[b])
            best = hull[p]
            if level_u[best] + level_s[best] * phi[b] < level_u[old] + level_s[old] * phi[b] - tol:
                _move(level, phi, kappa, level_s, b, old, best, B)
                changed = True
        if changed or not pairs:
            continue
        for a in range(B):
            for b in range(a + 1, B):
                k = kappa[a, b]
                if k == 0.0:
                    continue  # no coupling: the single moves already cover it
                la, lb = level[a], level[b]
                # fields without the a-b coupling, so the joint energy is exact
                fa = phi[a] - k * level_s[lb]
                fb = phi[b] - k * level_s[la]
                e_old = level_u[la] + level_s[la] * fa + level_u[lb] + level_s[lb] * fb + k * level_s[la] * level_s[lb]
                best_a, best_b, e_best = la, lb, e_old
                p = hull_start[b]
                for q in range(hull_start[a], hull_start[a + 1]):
                    ma = hull[q]
                    field = fb + k * level_s[ma]
                    p = _lowest(hull, hull_start[b], hull_start[b + 1], level_s, level_u, field, p)
                    mb = hull[p]
                    e = level_u[ma] + level_s[ma] * fa + level_u[mb] + level_s[mb] * field
                    if e < e_best:
                        best_a, best_b, e_best = ma, mb, e
                if e_best < e_old - tol:
                    _move(level, phi, kappa, level_s, a, la, best_a, B)
                    _move(level, phi, kappa, level_s, b, lb, best_b, B)
                    changed = True


@nb.njit(cache=True, nogil=True)
def anneal(kappa, level_start, level_s, level_u, hull_start, hull, betas, streams, tol, pairs, levels):
    """Anneal every row of ``levels`` from a random start through ``betas``, then descend.

    Args:
        kappa: Block couplings, symmetric with a zero diagonal, shape ``(B, B)``.
        level_start, level_s, level_u: Block ``b`` has the levels ``level_start[b]`` to
            ``level_start[b+1] - 1`` (global indices) with values ``level_s`` (ascending
            within a block) and in-block energies ``level_u``.
        hull_start, hull: The levels of block ``b`` on the lower convex hull of its points
            ``(s, u)`` are ``hull[hull_start[b]:hull_start[b+1]]``, in ascending ``s``.
        betas: Inverse temperature of each sweep, shape ``(S,)``.
        streams: One nonzero xorshift64* state per read, shape ``(R,)``; advanced in place.
        tol: Smallest energy decrease the final descent acts on.
        pairs: Whether the final descent also tries joint moves of two blocks.
        levels: Output, the global level index of every block in every read, shape ``(R, B)``.
    """
    R, B = levels.shape
    phi = np.empty(B)
    weights = np.empty(level_s.shape[0])
    for r in range(R):
        _start(kappa, level_start, level_s, level_u, levels[r], phi, streams, r)
        for s in range(betas.shape[0]):
            _sweep(kappa, level_start, level_s, level_u, levels[r], phi, betas[s], weights, streams, r)
        _descend(kappa, level_start, level_s, level_u, hull_start, hull, levels[r], phi, tol, pairs)


@nb.njit(cache=True, nogil=True)
def temper(kappa, level_start, level_s, level_u, hull_start, hull, betas, rounds, streams, tol, pairs, levels):
    """Parallel tempering: every read is a chain of ``len(betas)`` replicas, one per temperature.

    A round sweeps every replica once at its own ``beta_t``, then offers each neighbouring
    pair ``(t, t+1)`` a swap of temperatures, accepted with probability
    ``min(1, exp((beta_t - beta_{t+1}) (E_t - E_{t+1})))``. The read is the lowest-energy
    state the coldest replica visited, descended to a local minimum. Arguments as in
    :func:`anneal`, with ``rounds`` sweeps per replica.
    """
    R, B = levels.shape
    T = betas.shape[0]
    state = np.empty((T, B), dtype=levels.dtype)
    fields = np.empty((T, B))
    energy = np.empty(T)
    slot = np.empty(T, dtype=np.int64)  # slot[t]: the replica now at temperature t
    weights = np.empty(level_s.shape[0])
    for r in range(R):
        for t in range(T):
            energy[t] = _start(kappa, level_start, level_s, level_u, state[t], fields[t], streams, r)
            slot[t] = t
        best = np.inf
        for _ in range(rounds):
            for t in range(T):
                k = slot[t]
                energy[k] += _sweep(
                    kappa, level_start, level_s, level_u, state[k], fields[k], betas[t], weights, streams, r
                )
            for t in range(T - 1):
                a, b = slot[t], slot[t + 1]
                log_accept = (betas[t] - betas[t + 1]) * (energy[a] - energy[b])
                if log_accept >= 0.0 or _uniform(streams, r) < np.exp(log_accept):
                    slot[t], slot[t + 1] = b, a
            cold = slot[T - 1]
            if energy[cold] < best:
                best = energy[cold]
                levels[r] = state[cold]
        phi = fields[0]
        for a in range(B):
            phi[a] = 0.0
        for b in range(B):
            s = level_s[levels[r, b]]
            for a in range(B):
                phi[a] += kappa[b, a] * s
        _descend(kappa, level_start, level_s, level_u, hull_start, hull, levels[r], phi, tol, pairs)
