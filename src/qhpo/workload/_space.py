"""The hyperparameter search space of the CNN, in code and as a TOML file.

A space file has one table per parameter under ``[parameters]``; each table takes exactly
one of three forms::

    [parameters.num_layers]            # a categorical choice
    choices = [2, 3, 4]

    [parameters.learning_rate]         # a range; integer when low and high are integers,
    low = 1e-4                         # float otherwise (or say type = "int" / "float");
    high = 1.0                         # log = true samples log-uniformly, step = s
    log = true                         # restricts it to low + k*s

    [parameters.momentum]              # a fixed value, not searched
    value = 0.9
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from qhpo._errors import QhpoError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

#: The parameters :class:`qhpo.workload.TrialTrainer` reads from a configuration.
TRAINER_PARAMETERS = ("num_layers", "num_filters", "batch_size", "learning_rate", "momentum")

_KINDS = ("categorical", "int", "float", "fixed")
_RANGE_KEYS = {"type", "low", "high", "log", "step"}


@dataclass(frozen=True)
class Parameter:
    """One searched (or fixed) hyperparameter.

    Args:
        name: The name the trainer reads.
        kind: ``"categorical"`` (one of ``choices``), ``"int"`` or ``"float"`` (between
            ``low`` and ``high`` inclusive, log-uniform when ``log``, on a grid of ``step``
            when given), or ``"fixed"`` (always ``value``).
    """

    name: str
    kind: str
    choices: tuple = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    value: Any = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind of parameter {self.name!r} must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "categorical":
            if len(self.choices) == 0:
                raise ValueError(f"choices of parameter {self.name!r} must not be empty")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ValueError(f"choices of parameter {self.name!r} repeat a value: {list(self.choices)}")
            for choice in self.choices:
                if not isinstance(choice, (bool, int, float, str)):
                    raise ValueError(
                        f"choices of parameter {self.name!r} must be numbers, booleans or strings, got {choice!r}"
                    )
        elif self.kind in ("int", "float"):
            for label, bound in (("low", self.low), ("high", self.high)):
                if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                    raise ValueError(f"{label} of parameter {self.name!r} must be a finite number, got {bound!r}")
            if self.kind == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
                raise ValueError(
                    f"low and high of integer parameter {self.name!r} must be integers, got {self.low!r} and {self.high!r}"
                )
            if self.low > self.high:
                raise ValueError(
                    f"low of parameter {self.name!r} must not exceed high, got low={self.low!r} > high={self.high!r}"
                )
            if self.log and self.low <= 0:
                raise ValueError(f"low of log-scaled parameter {self.name!r} must be positive, got {self.low!r}")
            if self.step is not None:
                if self.log:
                    raise ValueError(f"parameter {self.name!r} cannot have both log = true and a step")
                if isinstance(self.step, bool) or not isinstance(self.step, (int, float)) or not self.step > 0:
                    raise ValueError(f"step of parameter {self.name!r} must be a positive number, got {self.step!r}")
                if self.kind == "int" and not float(self.step).is_integer():
                    raise ValueError(f"step of integer parameter {self.name!r} must be an integer, got {self.step!r}")

    def suggest(self, trial) -> Any:
        """Ask an ``optuna.Trial`` for this parameter's value."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)
        return self.value

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw a value: uniform over choices, uniform or log-uniform over a range."""
        if self.kind == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.kind == "fixed":
            return self.value
        low, high = float(self.low), float(self.high)
        if self.step is not None:
            count = int(math.floor((high - low) / self.step + 1e-9)) + 1
            value = low + self.step * int(rng.integers(count))
        elif self.log:
            # Integers widen by half a unit so that both end points are as likely as the inner ones.
            pad = 0.5 if self.kind == "int" else 0.0
            value = math.exp(rng.uniform(math.log(low - pad if low - pad > 0 else low), math.log(high + pad)))
        else:
            pad = 0.5 if self.kind == "int" else 0.0
            value = rng.uniform(low - pad, high + pad)
        if self.kind == "int":
            return int(min(max(round(value), int(low)), int(high)))
        return float(min(max(value, low), high))

    def distribution(self):
        """The equivalent ``optuna.distributions`` object (``None`` for a fixed value)."""
        from optuna import distributions

        if self.kind == "categorical":
            return distributions.CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return distributions.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.kind == "float":
            return distributions.FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)
        return None


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of :class:`Parameter` objects.

    Example:
        >>> import numpy as np
        >>> space = default_search_space()
        >>> space.names
        ('num_layers', 'num_filters', 'batch_size', 'learning_rate', 'momentum')
        >>> sorted(space.sample(np.random.default_rng(0)))
        ['batch_size', 'learning_rate', 'momentum', 'num_filters', 'num_layers']

    Args:
        parameters: The parameters, names unique.
    """

    parameters: tuple[Parameter, ...]
    source: str = field(default="<code>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameters must have unique names, got {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    def suggest(self, trial) -> dict[str, Any]:
        """One configuration from an ``optuna.Trial`` (fixed parameters are not suggested)."""
        return {p.name: p.suggest(trial) for p in self.parameters}

    def sample(self, rng: np.random.Generator | int | None = None) -> dict[str, Any]:
        """One configuration drawn independently per parameter from ``rng`` (a seed or Generator)."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        return {p.name: p.sample(rng) for p in self.parameters}

    def distributions(self) -> dict[str, Any]:
        """``optuna.distributions`` of the searched parameters, by name."""
        return {p.name: p.distribution() for p in self.parameters if p.kind != "fixed"}

    def fixed_values(self) -> dict[str, Any]:
        """The values of the parameters that are not searched."""
        return {p.name: p.value for p in self.parameters if p.kind == "fixed"}

    @classmethod
    def from_dict(
        cls,
        table: Mapping[str, Any],
        *,
        required: Iterable[str] | None = TRAINER_PARAMETERS,
        source: str = "the search space",
    ) -> SearchSpace:
        """Build a space from the parsed form of a space file (see the module docstring).

        Args:
            table: ``{"parameters": {name: {...}, ...}}``.
            required: Names the space must define, and the only ones it may define (the
                trainer's parameters by default); ``None`` accepts any names.
            source: How errors name the space (the file path for :meth:`from_toml`).

        Raises:
            QhpoError: One sentence naming the parameter and what to change.
        """
        if not isinstance(table, Mapping) or not isinstance(table.get("parameters"), Mapping):
            raise QhpoError(
                f"{source} has no [parameters] table; define each parameter as [parameters.<name>] with choices, low/high or value."
            )
        unknown_top = sorted(set(table) - {"parameters"})
        if unknown_top:
            raise QhpoError(
                f"{source} has unknown top-level key(s) {', '.join(unknown_top)}; only [parameters.<name>] tables are read."
            )
        entries = table["parameters"]
        if required is not None:
            required = tuple(required)
            unknown = [name for name in entries if name not in required]
            if unknown:
                raise QhpoError(
                    f"{source} defines unknown parameter(s) {', '.join(map(repr, unknown))}; the CNN trainer reads "
                    f"exactly {', '.join(required)}."
                )
            absent = [name for name in required if name not in entries]
            if absent:
                raise QhpoError(
                    f"{source} lacks parameter(s) {', '.join(map(repr, absent))}; give each a [parameters.<name>] "
                    "table with choices, low/high or a fixed value."
                )
        return cls(tuple(_parse_parameter(name, spec, source) for name, spec in entries.items()), source=source)

    @classmethod
    def from_toml(cls, path: str | os.PathLike, *, required: Iterable[str] | None = TRAINER_PARAMETERS) -> SearchSpace:
        """Read a space file (format in the module docstring).

        Raises:
            QhpoError: The file is missing, is not valid TOML, or defines a parameter badly.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise QhpoError(
                f"the search-space file {path} does not exist; pass the path of a TOML space file."
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise QhpoError(
                f"the search-space file {path} cannot be read ({error}); pass a readable UTF-8 TOML file."
            ) from None
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise QhpoError(
                f"the search-space file {path} is not valid TOML ({error}); fix the syntax there."
            ) from None
        return cls.from_dict(table, required=required, source=f"the search-space file {path}")


def _parse_parameter(name: str, spec: Any, source: str) -> Parameter:
    where = f"parameter {name!r} in {source}"
    if not isinstance(spec, Mapping):
        raise QhpoError(f"{where} must be a table ([parameters.{name}]) with choices, low/high or value, not {spec!r}.")
    forms = [key for key in ("choices", "low", "value") if key in spec]
    if "high" in spec and "low" not in spec:
        forms.append("low")
    if len(forms) != 1:
        raise QhpoError(
            f"{where} must have exactly one of choices, low/high or value, but has {', '.join(sorted(spec)) or 'none of them'}."
        )
    try:
        if "choices" in spec:
            extra = sorted(set(spec) - {"choices"})
            if extra:
                raise QhpoError(f"{where} has choices, so {', '.join(extra)} make(s) no sense there; remove it.")
            if not isinstance(spec["choices"], list):
                raise QhpoError(f"{where} needs choices as a list such as [16, 32], not {spec['choices']!r}.")
            return Parameter(name, "categorical", choices=tuple(spec["choices"]))
        if "value" in spec:
            extra = sorted(set(spec) - {"value"})
            if extra:
                raise QhpoError(f"{where} has a fixed value, so {', '.join(extra)} make(s) no sense there; remove it.")
            return Parameter(name, "fixed", value=spec["value"])
        extra = sorted(set(spec) - _RANGE_KEYS)
        if extra:
            raise QhpoError(
                f"{where} has unknown key(s) {', '.join(extra)}; a range takes low, high, log, step and type."
            )
        if "high" not in spec:
            raise QhpoError(f"{where} has low but no high; give both ends of the range.")
        low, high = spec["low"], spec["high"]
        kind = spec.get("type")
        if kind is None:
            kind = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) else "float"
        if kind not in ("int", "float"):
            raise QhpoError(f'{where} has type = {kind!r}; a range is "int" or "float".')
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise QhpoError(f"{where} needs log = true or false, not {log!r}.")
        return Parameter(name, kind, low=low, high=high, log=log, step=spec.get("step"))
    except ValueError as error:
        raise QhpoError(f"{where} is invalid: {error}; fix it in the file.") from None


def default_search_space() -> SearchSpace:
    """The CNN search space of the reference experiment.

    num_layers in {2, 3, 4}; num_filters in {16, 32, 48, 64}; batch_size in {64, 128, 256,
    512}; learning_rate log-uniform on [1e-4, 1]; momentum log-uniform on [1e-4, 0.9]. It is
    shipped as ``qhpo/data/default_space.toml``, a template for other space files.
    """
    path = resources.files("qhpo") / "data" / "default_space.toml"
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return SearchSpace.from_dict(table, source="the default search space")
