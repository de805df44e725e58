"""Turning a sampler name into a dimod sampler.

Every QUBO in qhpo is solved through the dimod interface (``sampler.sample(bqm, **kw)``),
so a D-Wave QPU, the Leap hybrid solver, simulated annealing and an exact solver are
interchangeable. :func:`make_sampler` maps the names used on the command line and in
configuration files to those objects; code that needs an annealer takes the object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dimod

from qhpo._errors import QhpoError

#: The sampler a QSVR uses when none is named.
DEFAULT_SAMPLER = "qhpo-sa"

_QPU_HINT = (
    "install the D-Wave extra with `pip install 'qhpo[qpu]'` and configure a Leap API token "
    "(`dwave config create` or the DWAVE_API_TOKEN environment variable), or use a classical "
    "sampler such as 'sa'"
)


def _no_params(name: str, params: dict[str, Any]) -> None:
    if params:
        raise ValueError(f"sampler {name!r} takes no parameters, got {sorted(params)}")


def _simulated_annealing(**params) -> dimod.Sampler:
    from dwave.samplers import SimulatedAnnealingSampler

    _no_params("sa", params)
    return SimulatedAnnealingSampler()


def _tabu(**params) -> dimod.Sampler:
    from dwave.samplers import TabuSampler

    _no_params("tabu", params)
    return TabuSampler()


def _steepest(**params) -> dimod.Sampler:
    from dwave.samplers import SteepestDescentSampler

    _no_params("steepest", params)
    return SteepestDescentSampler()


def _exact(**params) -> dimod.Sampler:
    _no_params("exact", params)
    return dimod.ExactSolver()


def _dwave_cloud(kind: str, **params) -> dimod.Sampler:
    try:
        from dwave.system import DWaveCliqueSampler, LeapHybridSampler
    except ImportError:
        raise QhpoError(f"the sampler {kind!r} needs the D-Wave Ocean packages; {_QPU_HINT}.") from None
    cls = DWaveCliqueSampler if kind == "dwave" else LeapHybridSampler
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for sampler {kind!r}: {error}") from None
    except Exception as error:  # the cloud client raises many types (ValueError, SolverNotFoundError, ...)
        raise QhpoError(
            f"could not connect to the D-Wave {'QPU' if kind == 'dwave' else 'Leap hybrid solver'} "
            f"({error}); {_QPU_HINT}."
        ) from None


def _dwave(
    *,
    child=None,
    fallback: str | dimod.Sampler = DEFAULT_SAMPLER,
    chain_strength: float | None = None,
    qpu_params: dict[str, Any] | None = None,
    **params,
) -> dimod.Sampler:
    """The QPU through a clique embedding, falling back to ``fallback`` when the solver fails.

    ``child`` is the QPU sampler itself: None connects to Leap with ``params`` (``solver=``,
    ``token=``, ...); a ``dwave.system.testing.MockDWaveSampler`` runs the whole path offline.
    """
    from qhpo.samplers._qpu import QpuCliqueSampler

    if child is None:
        try:
            from dwave.system import DWaveSampler
        except ImportError:
            raise QhpoError(f"the sampler 'dwave' needs the D-Wave Ocean packages; {_QPU_HINT}.") from None
        try:
            child = DWaveSampler(**params)
        except TypeError as error:
            raise ValueError(f"bad parameters for sampler 'dwave': {error}") from None
        except Exception as error:  # the cloud client raises many types (ValueError, SolverNotFoundError, ...)
            raise QhpoError(f"could not connect to the D-Wave QPU ({error}); {_QPU_HINT}.") from None
    elif params:
        raise ValueError(f"sampler 'dwave' with a child takes no connection parameters, got {sorted(params)}")
    backup = make_sampler(fallback) if isinstance(fallback, str) else fallback
    return QpuCliqueSampler(child, fallback=backup, chain_strength=chain_strength, qpu_params=qpu_params)


def _hybrid(**params) -> dimod.Sampler:
    return _dwave_cloud("hybrid", **params)


def _pegasus_sa(**params) -> dimod.Sampler:
    from qhpo.samplers._pegasus import PegasusCliqueSampler

    return PegasusCliqueSampler(**params)


def _qhpo_sa(**params) -> dimod.Sampler:
    # Imported on demand: the dense annealer is optional machinery.
    from qhpo.samplers._dense_sa import DenseSimulatedAnnealingSampler

    return DenseSimulatedAnnealingSampler(**params)


_FACTORIES: dict[str, Callable[..., dimod.Sampler]] = {
    "sa": _simulated_annealing,
    "tabu": _tabu,
    "steepest": _steepest,
    "exact": _exact,
    "dwave": _dwave,
    "hybrid": _hybrid,
    "pegasus-sa": _pegasus_sa,
    "qhpo-sa": _qhpo_sa,
}

#: Names accepted by :func:`make_sampler`.
SAMPLER_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_sampler(name: str, **params) -> dimod.Sampler:
    """The dimod sampler called ``name``.

    Names: ``sa`` (simulated annealing, dwave-samplers), ``tabu``, ``steepest`` (greedy
    descent), ``exact`` (enumeration, tiny problems only), ``dwave`` (D-Wave QPU through a
    clique embedding), ``hybrid`` (Leap hybrid BQM solver), ``pegasus-sa`` (the QPU's
    clique-embedding path on an Advantage-size Pegasus graph, sampled by simulated
    annealing) and ``qhpo-sa`` (qhpo's dense simulated annealer). ``params`` go to the
    sampler's constructor (for example ``solver=`` or ``token=`` for ``dwave``).

    ``dwave`` gives a :class:`qhpo.samplers._qpu.QpuCliqueSampler`: Ocean's
    ``DWaveCliqueSampler`` on the QPU, reporting ``chain_strength_`` and
    ``chain_break_fraction_`` after every call and falling back to ``fallback`` (default
    :data:`DEFAULT_SAMPLER`) with one warning when the solver fails. ``child=`` replaces the
    Leap connection by any QPU-like sampler, e.g. dwave-system's ``MockDWaveSampler`` on an
    Advantage-size Pegasus graph, so the whole path runs offline.

    Example:
        >>> sampler = make_sampler("sa")
        >>> float(sampler.sample_qubo({(0, 0): -1.0}, num_reads=2).first.energy)
        -1.0

    Raises:
        ValueError: ``name`` is unknown or ``params`` do not fit the sampler.
        qhpo.QhpoError: a D-Wave sampler was asked for without the extra or a token.
    """
    if not isinstance(name, str) or name not in _FACTORIES:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLER_NAMES)}, got {name!r}")
    return _FACTORIES[name](**params)


def resolve_sampler(sampler) -> dimod.Sampler:
    """``sampler`` as a dimod sampler: ``None`` -> the default, a name -> :func:`make_sampler`."""
    if sampler is None:
        from qhpo import samplers  # read at call time so that a changed default takes effect

        return make_sampler(samplers.DEFAULT_SAMPLER)
    if isinstance(sampler, str):
        return make_sampler(sampler)
    if not callable(getattr(sampler, "sample", None)):
        raise ValueError(f"sampler must be a sampler name or an object with a .sample(bqm) method, got {sampler!r}")
    return sampler
