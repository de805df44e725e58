"""Argument checks shared by qhpo's public classes and functions.

An integer argument takes a Python or NumPy integer and nothing else: ``True`` is refused
(a flag passed by mistake) and so is ``3.0``, as scikit-learn's parameter validation
refuses them.
"""

from __future__ import annotations

import inspect
from numbers import Integral
from typing import Any


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


class Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``) between ``low`` and ``high`` (None:
    unbounded), ``closed`` on ``"both"`` ends, ``"left"``, ``"right"`` or ``"neither"``.
    Booleans, and non-finite reals, are never numbers here.

    Example:
        >>> from numbers import Real
        >>> Interval(Real, 0, 1, closed="left").describe()
        'a number in [0, 1)'
    """

    def __init__(self, kind: type, low: float | None, high: float | None, *, closed: str = "both"):
        from numbers import Real

        if kind not in (Integral, Real) or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"an Interval takes Integral or Real and a closed side, got {kind!r}, {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        import math

        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if not math.isfinite(value):
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high and not right)))

    def describe(self) -> str:
        what = "an integer" if self.kind is Integral else "a number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        return what


class Boolean:
    """``True`` or ``False`` (not 0 or 1)."""

    def accepts(self, value) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "True or False"


class Options:
    """One of a fixed set of values (texts), as scikit-learn's ``StrOptions``.

    Example:
        >>> Options("rank", "average").describe()
        "one of 'average', 'rank'"
    """

    def __init__(self, *values: str):
        self.values = frozenset(values)

    def accepts(self, value) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values))


def validate_parameters(constraints: dict, values: dict) -> None:
    """Raise ``ValueError`` naming the first of ``values`` that none of its constraints accept.

    ``constraints`` maps each name to a list of :class:`Interval`, :class:`Boolean`, :class:`Options` or None
    (None accepts None), as scikit-learn's ``_parameter_constraints`` do; a policy declares
    one such table and checks its arguments against it in one place.

    Example:
        >>> validate_parameters({"min_resource": [Interval(Integral, 1, None), None]}, {"min_resource": 2.7})
        Traceback (most recent call last):
        ...
        ValueError: min_resource must be an integer >= 1 or None, got 2.7
    """
    for name, value in values.items():
        allowed = constraints[name]
        if any(value is None if c is None else c.accepts(value) for c in allowed):
            continue
        described = [c.describe() for c in allowed if c is not None] + (["None"] if None in allowed else [])
        raise ValueError(f"{name} must be {' or '.join(described)}, got {value!r}")


def accepts_keyword(function: Any, name: str) -> bool:
    """Whether ``function`` takes the keyword argument ``name`` (a ``promote`` written before
    ``more_trials`` existed does not)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters)
