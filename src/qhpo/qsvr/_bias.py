"""The SVR bias from the Karush-Kuhn-Tucker conditions.

With ``f0(x_n) = sum_m d_m k(x_n, x_m)`` the residual ``r_n = y_n - f0(x_n)`` must satisfy,
at the optimum of the epsilon-SVR with box ``[0, C]``:

- free ``alpha_n`` (``0 < alpha_n < C``):          ``b = r_n - epsilon``
- free ``alpha_hat_n`` (``0 < alpha_hat_n < C``):  ``b = r_n + epsilon``
- ``alpha_n = alpha_hat_n = 0``:                   ``r_n - epsilon <= b <= r_n + epsilon``
- ``alpha_n = C``:                                  ``b <= r_n - epsilon``
- ``alpha_hat_n = C``:                              ``b >= r_n + epsilon``

``b`` is the mean of the estimates from the free support vectors. When there is none (all
coefficients are 0 or at the box), ``b`` is the midpoint of the interval
``[max lower bounds, min upper bounds]`` that the other conditions leave, as LIBSVM does;
an approximate annealer solution can make that interval empty, and the midpoint is then
the value that violates the two tightest bounds equally.
"""

from __future__ import annotations

import numpy as np


def kkt_bias(alpha: np.ndarray, alpha_hat: np.ndarray, residual: np.ndarray, epsilon: float, C: float) -> float:
    """The bias ``b`` for one solution; ``residual`` is ``y_n - f0(x_n)`` (see module doc).

    ``alpha`` and ``alpha_hat`` must be complementary (at most one of them non-zero per
    point, see :func:`qhpo.qsvr._decode.remove_overlap`).
    """
    tol = 1e-9 * max(C, 1.0)
    at_zero_a, at_zero_h = alpha <= tol, alpha_hat <= tol
    at_box_a, at_box_h = alpha >= C - tol, alpha_hat >= C - tol
    free_a = ~at_zero_a & ~at_box_a
    free_h = ~at_zero_h & ~at_box_h
    if free_a.any() or free_h.any():
        estimates = np.concatenate([residual[free_a] - epsilon, residual[free_h] + epsilon])
        return float(estimates.mean())
    both_zero = at_zero_a & at_zero_h
    upper = np.concatenate([residual[both_zero] + epsilon, residual[at_box_a] - epsilon])
    lower = np.concatenate([residual[both_zero] - epsilon, residual[at_box_h] + epsilon])
    if upper.size and lower.size:
        return float(0.5 * (lower.max() + upper.min()))
    # Only one kind of bound exists when every point sits at the box on the same side.
    return float(upper.min() if upper.size else lower.max())
