"""Content fingerprints of curve tables: what a prior uses to recognise a table it was
built from, whatever the table's file is called."""

from __future__ import annotations

import hashlib

import numpy as np

#: Epochs of a row that its key reads: a table cut to fewer epochs, or a draw of its rows,
#: still shares these keys with the table it came from.
ROW_KEY_EPOCHS = 3


def _canonical(curves: np.ndarray) -> np.ndarray:
    """``curves`` as little-endian float64, every NaN the same NaN and -0.0 as 0.0."""
    c = np.array(curves, dtype="<f8") + 0.0
    c[np.isnan(c)] = np.nan
    return c


def row_keys(curves: np.ndarray) -> list[str]:
    """The sorted distinct keys of the rows: the first 16 hex digits of SHA-256 over a row's
    first :data:`ROW_KEY_EPOCHS` values (float64, canonical NaN). A row whose first values
    are all equal (a run stuck at chance level, as many tables hold) gets no key: such a
    row says nothing about which table it came from.

    Example:
        >>> row_keys(np.array([[0.1, 0.2, 0.3, 0.4]])) == row_keys(np.array([[0.1, 0.2, 0.3]]))
        True
        >>> row_keys(np.array([[0.1, 0.1, 0.1, 0.5]]))
        []
    """
    c = _canonical(np.atleast_2d(curves))[:, :ROW_KEY_EPOCHS]
    keys = {hashlib.sha256(row.tobytes()).hexdigest()[:16] for row in c if not np.all(row == row[0])}
    return sorted(keys)


def table_fingerprint(curves: np.ndarray) -> str:
    """SHA-256 over the sorted SHA-256 digests of the rows (all epochs): the same for a
    renamed copy or a reordering of the rows, different once any value differs.

    Example:
        >>> a = np.array([[0.1, 0.2], [0.3, np.nan]])
        >>> table_fingerprint(a) == table_fingerprint(a[::-1])
        True
    """
    c = _canonical(np.atleast_2d(curves))
    digests = sorted(hashlib.sha256(row.tobytes()).digest() for row in c)
    whole = hashlib.sha256(str(c.shape[1]).encode())
    for d in digests:
        whole.update(d)
    return whole.hexdigest()
