"""Argument checks shared by qhpo's public classes and functions.

An integer argument takes a Python or NumPy integer and nothing else: ``True`` is refused
(a flag passed by mistake) and so is ``3.0``, as scikit-learn's parameter validation
refuses them.
"""

from __future__ import annotations

from numbers import Integral


def check_int(name: str, value, *, least: int | None = None, most: int | None = None) -> int:
    """``value`` as an ``int`` when it is an integer in ``[least, most]``, else ``ValueError``.

    Example:
        >>> check_int("max_epochs", 200, least=1)
        200
        >>> check_int("max_epochs", 2.0, least=1)
        Traceback (most recent call last):
        ...
        ValueError: max_epochs must be an integer >= 1, got 2.0

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.
        least, most: Bounds (inclusive); None for none.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, Integral)
        or (least is not None and value < least)
        or (most is not None and value > most)
    ):
        if least is not None and most is not None:
            bounds = f" in [{least}, {most}]"
        elif least is not None:
            bounds = f" >= {least}"
        elif most is not None:
            bounds = f" <= {most}"
        else:
            bounds = ""
        raise ValueError(f"{name} must be an integer{bounds}, got {value!r}")
    return int(value)
