"""Optuna's own pruners with the defaults qhpo compares against (``qhpo bench``, ``qhpo run``).

For a budget of ``E`` epochs (each value rounded, at least 1):

    median:    MedianPruner(n_startup_trials=5, n_warmup_steps=E/10)
    sha:       SuccessiveHalvingPruner(min_resource=E/20, reduction_factor=3)
    hyperband: HyperbandPruner(min_resource=E/20, max_resource=E, reduction_factor=3)

``median`` with a ``percentile`` other than 50 is Optuna's ``PercentilePruner``.
``conformal`` is ``surestop.ConformalPruner`` (the surestop package, MIT) with its
documented defaults, whatever the budget:

    conformal: ConformalPruner(n_calibration=60, alpha=0.05)

(the first 60 completed trials run unpruned and calibrate a kill rule once; later trials
are killed when the latest value, as forecast of the final one, crosses a bound that
keeps the expected share of good trials killed below ``alpha``).
"""

from __future__ import annotations

from typing import Any

import optuna

from qhpo._checks import check_int
from qhpo._rules import RuleKind, rule_names

#: Names of the rules that are Optuna pruners, built by :func:`optuna_pruner`.
OPTUNA_PRUNERS: tuple[str, ...] = rule_names(RuleKind.OPTUNA)


def _rounded(x: float) -> int:
    return max(1, int(round(x)))


def pruner_defaults(name: str, epochs: int) -> dict[str, Any]:
    """The keyword arguments of baseline ``name`` for a budget of ``epochs`` epochs.

    Example:
        >>> pruner_defaults("sha", 200)
        {'min_resource': 10, 'reduction_factor': 3}
    """
    epochs = check_int("epochs", epochs, least=1)
    if name == "median":
        return {"n_startup_trials": 5, "n_warmup_steps": _rounded(epochs / 10)}
    if name == "sha":
        return {"min_resource": _rounded(epochs / 20), "reduction_factor": 3}
    if name == "hyperband":
        return {"min_resource": _rounded(epochs / 20), "max_resource": epochs, "reduction_factor": 3}
    if name == "conformal":
        return {"n_calibration": 60, "alpha": 0.05}
    raise ValueError(f"name must be one of {', '.join(OPTUNA_PRUNERS)}, got {name!r}")


def optuna_pruner(name: str, epochs: int, **options: Any) -> optuna.pruners.BasePruner:
    """The Optuna pruner ``name`` with :func:`pruner_defaults` for ``epochs``, updated by ``options``.

    Example:
        >>> type(optuna_pruner("hyperband", 200)).__name__
        'HyperbandPruner'
        >>> type(optuna_pruner("median", 200, percentile=25.0)).__name__
        'PercentilePruner'
    """
    kwargs = pruner_defaults(name, epochs)
    percentile = options.pop("percentile", 50.0) if name == "median" else 50.0
    kwargs.update(options)
    if name == "median":
        if percentile == 50.0:
            return optuna.pruners.MedianPruner(**kwargs)
        return optuna.pruners.PercentilePruner(percentile, **kwargs)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(**kwargs)
    if name == "conformal":
        from surestop import ConformalPruner

        return ConformalPruner(**kwargs)
    return optuna.pruners.HyperbandPruner(**kwargs)
