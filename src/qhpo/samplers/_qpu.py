"""A D-Wave QPU behind Ocean's clique embedding, with chain reporting and a classical fallback.

:class:`QpuCliqueSampler` samples a QUBO through :class:`dwave.system.DWaveCliqueSampler`
(clique embedding on the QPU's Pegasus graph, scaling to the QPU's bias ranges, majority
vote unembedding) and records, for every call, the chain strength it used and the mean
fraction of broken chains. The chain strength is Ocean's uniform torque compensation with
the prefactor of :data:`qhpo.samplers._pegasus.CHAIN_STRENGTH_PREFACTOR` (see that module
for why twice Ocean's default). When the solver fails (network, quota, solver offline),
the sampler warns once and continues with the classical annealer, so a search never
stops because the QPU went away.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import dimod
import numpy as np

from qhpo.samplers._pegasus import CHAIN_STRENGTH_PREFACTOR


class QpuCliqueSampler(dimod.Sampler):
    """A dimod sampler on a D-Wave QPU (or dwave-system's ``MockDWaveSampler``).

    Args:
        child: The QPU sampler (:class:`dwave.system.DWaveSampler`, or a
            ``MockDWaveSampler`` of the same topology for offline runs).
        fallback: Sampler used once the QPU failed (a dimod sampler).
        chain_strength: Chain coupling in Ising units; None: uniform torque compensation
            with prefactor :data:`CHAIN_STRENGTH_PREFACTOR`.
        qpu_params: Further parameters of every QPU call (``annealing_time``, ...).

    Attributes:
        chain_strength_: Chain strength of the last QPU call.
        chain_break_fraction_: Mean fraction of broken chains over the reads of the last QPU call.
        failure_: The error that made the sampler fall back, or None.
    """

    def __init__(
        self,
        child,
        *,
        fallback: dimod.Sampler,
        chain_strength: float | None = None,
        qpu_params: dict[str, Any] | None = None,
    ) -> None:
        from dwave.system import DWaveCliqueSampler

        class _Clique(DWaveCliqueSampler):
            def __init__(self, qpu) -> None:  # the composite's own code on the given child
                self.child = qpu

        if chain_strength is not None and not chain_strength > 0:
            raise ValueError(f"chain_strength must be positive, got {chain_strength}")
        self.clique = _Clique(child)
        self.fallback = fallback
        self.chain_strength = chain_strength
        self.qpu_params = dict(qpu_params or {})
        self.chain_strength_: float | None = None
        self.chain_break_fraction_: float | None = None
        self.failure_: BaseException | None = None

    @property
    def parameters(self) -> dict[str, list]:
        return {"num_reads": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"child_properties": self.clique.child.properties}

    def sample(
        self, bqm: dimod.BinaryQuadraticModel, *, num_reads: int | None = None, seed: int | None = None, **parameters
    ) -> dimod.SampleSet:
        """Sample ``bqm`` on the QPU (``seed`` is for the fallback only: a QPU takes none)."""
        if self.failure_ is None:
            try:
                return self._sample_qpu(bqm, num_reads=num_reads, **parameters)
            except (ValueError, TypeError):
                raise  # the problem or the parameters are wrong, not the solver
            except Exception as error:  # the cloud client raises many types
                self.failure_ = error
                warnings.warn(
                    f"the D-Wave QPU failed ({type(error).__name__}: {error}); qhpo continues with the "
                    f"classical annealer {type(self.fallback).__name__} for the rest of this run.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        kwargs = dict(parameters)
        fallback_params = getattr(self.fallback, "parameters", {}) or {}
        if num_reads is not None and "num_reads" in fallback_params:
            kwargs["num_reads"] = num_reads
        if seed is not None and "seed" in fallback_params:
            kwargs["seed"] = seed
        return self.fallback.sample(bqm, **kwargs)

    def _sample_qpu(self, bqm, *, num_reads: int | None, **parameters) -> dimod.SampleSet:
        from dwave.embedding.chain_strength import uniform_torque_compensation

        strength = self.chain_strength
        if strength is None:
            strength = functools.partial(uniform_torque_compensation, prefactor=CHAIN_STRENGTH_PREFACTOR)
        kwargs = {**self.qpu_params, **parameters}
        if num_reads is not None:
            kwargs["num_reads"] = int(num_reads)
        sampleset = self.clique.sample(bqm, chain_strength=strength, return_embedding=True, **kwargs)
        sampleset.resolve()
        context = sampleset.info.get("embedding_context", {})
        self.chain_strength_ = float(context["chain_strength"]) if "chain_strength" in context else None
        breaks = (
            sampleset.record.chain_break_fraction if "chain_break_fraction" in sampleset.record.dtype.names else None
        )
        self.chain_break_fraction_ = None if breaks is None else float(np.mean(breaks))
        sampleset.info["chain_strength"] = self.chain_strength_
        sampleset.info["chain_break_fraction"] = self.chain_break_fraction_
        return sampleset
