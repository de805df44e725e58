"""The SVR training problem as a QUBO.

With bit weights ``w_i`` (see :mod:`qhpo.qsvr._decode`) the coefficients are
``alpha_n = sum_i w_i a[K*n + i]`` and ``alpha_hat_n = sum_i w_i a[K*(N+n) + i]``, and the
energy of a bit vector ``a`` is the epsilon-SVR dual with the equality constraint as a
penalty:

    E(a) = 1/2 sum_nm d_n d_m k(x_n, x_m) + epsilon sum_n (alpha_n + alpha_hat_n)
           - sum_n y_n d_n + xi (sum_n d_n)^2,          d_n = alpha_n - alpha_hat_n,

with the RBF kernel ``k(x, x') = exp(-gamma |x - x'|^2)``. Writing ``d = s * a`` for the
signed weight ``s_p = +w_i`` on alpha bits and ``-w_i`` on alpha_hat bits, and ``n(p)`` for
the training point of bit ``p``, this is ``E = a^T M a + sum_p h_p a_p`` with

    M_pq = s_p s_q (k(x_n(p), x_n(q)) / 2 + xi),   h_p = epsilon |s_p| - y_n(p) s_p.

Since ``a_p^2 = a_p`` the diagonal of ``M`` joins the linear terms and every pair ``p < q``
gets the coupling ``2 M_pq``.
"""

from __future__ import annotations

import dimod
import numpy as np
from sklearn.metrics.pairwise import rbf_kernel

from qhpo._checks import check_int
from qhpo.qsvr._decode import bit_weights


def build_svr_qubo(
    X, y, *, K: int, base: float, exponent_offset: float, epsilon: float, xi: float, gamma: float
) -> dimod.BinaryQuadraticModel:
    """The BQM over variables ``0..2KN-1`` whose energy is the SVR dual above.

    Args:
        X: Training inputs, shape ``(N, D)``.
        y: Training targets, shape ``(N,)`` (scaled to about [0, 1] for the default box).
        K: Bits per coefficient.
        base: Base of the bit weights ``w_i = base ** (i - exponent_offset)``.
        exponent_offset: Offset of the exponents.
        epsilon: Half-width of the insensitive tube.
        xi: Weight of the penalty ``(sum_n d_n)^2`` for the constraint ``sum_n d_n = 0``.
        gamma: RBF kernel width.

    Example:
        >>> import numpy as np
        >>> bqm = build_svr_qubo(np.eye(2), np.array([0.0, 1.0]), K=2, base=0.5,
        ...                      exponent_offset=0.0, epsilon=0.1, xi=0.01, gamma=0.1)
        >>> bqm.num_variables, bqm.num_interactions
        (8, 28)
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array, got shape {X.shape}")
    N = X.shape[0]
    if y.shape != (N,):
        raise ValueError(f"y must have shape ({N},) to match X, got {y.shape}")
    if N < 2:
        raise ValueError(f"the QUBO needs at least 2 training points, got {N}")
    K = check_int("K", K, least=1)
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite (no NaN or inf)")
    w = bit_weights(K, base, exponent_offset)
    signed = np.concatenate([np.tile(w, N), -np.tile(w, N)])
    point = np.concatenate([np.repeat(np.arange(N), K), np.repeat(np.arange(N), K)])
    kernel = rbf_kernel(X, X, gamma=gamma)
    M = np.outer(signed, signed) * (0.5 * kernel[np.ix_(point, point)] + xi)
    linear = epsilon * np.abs(signed) - y[point] * signed + np.diag(M)
    couplings = np.triu(2.0 * M, k=1)
    np.fill_diagonal(couplings, linear)
    return dimod.BinaryQuadraticModel(couplings, "BINARY")
