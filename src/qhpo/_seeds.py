"""Seeds of independent random streams derived from one user seed.

A component that needs several streams (one per refit, per rung, per split) asks for
``derived_seed(seed, *key)``: the first 32-bit word of
``numpy.random.SeedSequence(seed, spawn_key=key)``, the stream that
``SeedSequence(seed).spawn`` would give the child at ``key``. Streams with different keys
are independent, whatever the seed, unlike seeds built by arithmetic (``seed * C + k``)
that collide for other seeds.
"""

from __future__ import annotations

import numpy as np


def derived_seed(seed: int, *key: int) -> int:
    """A seed in ``[0, 2**32)`` for the stream ``key`` of ``seed``.

    Example:
        >>> derived_seed(0, 1) == derived_seed(0, 1) != derived_seed(0, 2)
        True
    """
    sequence = np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])
