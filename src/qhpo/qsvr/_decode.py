"""The binary encoding of the SVR coefficients, and its inverse.

Each coefficient is a K-bit fixed-point number with bit weights

    w_i = base ** (i - exponent_offset),   i = 0..K-1,

so ``alpha_n = sum_i w_i a[K*n + i]`` and ``alpha_hat_n = sum_i w_i a[K*(N+n) + i]``; every
coefficient lies on a grid in ``[0, sum_i w_i]`` (the effective box constraint C).
"""

from __future__ import annotations

import numpy as np


def bit_weights(K: int, base: float, exponent_offset: float) -> np.ndarray:
    """The weights ``w_i = base ** (i - exponent_offset)`` of the K bits of one coefficient."""
    return float(base) ** (np.arange(int(K)) - float(exponent_offset))


def box_bound(K: int, base: float, exponent_offset: float) -> float:
    """The largest value a coefficient can take, ``C = sum_i w_i``."""
    return float(bit_weights(K, base, exponent_offset).sum())


def decode_coefficients(bits, N: int, K: int, base: float, exponent_offset: float):
    """Decode bit vectors into ``(alpha, alpha_hat)``.

    Args:
        bits: Shape ``(2*K*N,)`` or ``(S, 2*K*N)``, variables in the order 0..2KN-1.

    Returns:
        ``alpha`` and ``alpha_hat``, each of shape ``(N,)`` or ``(S, N)``.
    """
    bits = np.asarray(bits, dtype=float)
    single = bits.ndim == 1
    bits = np.atleast_2d(bits)
    if bits.shape[1] != 2 * K * N:
        raise ValueError(f"bits must have 2*K*N = {2 * K * N} columns, got {bits.shape[1]}")
    values = bits.reshape(bits.shape[0], 2 * N, K) @ bit_weights(K, base, exponent_offset)
    alpha, alpha_hat = values[:, :N], values[:, N:]
    return (alpha[0], alpha_hat[0]) if single else (alpha, alpha_hat)


def remove_overlap(alpha: np.ndarray, alpha_hat: np.ndarray):
    """Enforce complementarity: subtract ``min(alpha_n, alpha_hat_n)`` from both.

    This leaves ``d_n = alpha_n - alpha_hat_n`` (hence every prediction) unchanged and
    lowers the epsilon term of the energy, so it is never worse; afterwards
    ``alpha_n * alpha_hat_n = 0`` as the SVR optimality conditions require.
    """
    overlap = np.minimum(alpha, alpha_hat)
    return alpha - overlap, alpha_hat - overlap
