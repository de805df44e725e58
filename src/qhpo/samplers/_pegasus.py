"""The QPU's embedding path without a QPU: a clique embedding on Pegasus, sampled classically.

A D-Wave Advantage QPU has a Pegasus P16 qubit graph; the QSVR's QUBO is fully connected,
so each logical variable becomes a chain of physical qubits (a clique embedding, found by
:func:`minorminer.busclique.find_clique_embedding`). This sampler performs exactly the
steps a QPU run performs (embed with chain couplings ``-chain_strength``, sample the
physical problem, unembed by majority vote) with simulated annealing in place of the
QPU, and reports the fraction of broken chains of every read in the sample set's
``chain_break_fraction`` data vector.

The default chain strength is Ocean's uniform torque compensation,
``prefactor * sqrt(sum_ij J_ij^2 / |E|) * sqrt(|E| / |V|)`` (in Ising units), with twice
the QPU samplers' prefactor (2.828 instead of 1.414): on the QSVR's 120-variable QUBO the
QPU default left about 9 % of chains broken under simulated annealing, twice as strong
about 0.1 % with the lowest logical energies, while ``10 * ceil(max|Q|)`` (the reference
workflow) keeps chains intact but freezes them early (docs/qsvr.md has the numbers).
"""

from __future__ import annotations

import functools

import dimod
import numpy as np

from qhpo._checks import check_int

#: Pegasus size parameter of a D-Wave Advantage system.
ADVANTAGE_PEGASUS_M = 16
#: Prefactor of the uniform torque compensation used when no chain strength is given.
CHAIN_STRENGTH_PREFACTOR = 2.828


@functools.lru_cache(maxsize=4)
def _pegasus(m: int):
    """The Pegasus graph P``m`` and its adjacency (built once per process: 0.2 s for P16)."""
    try:
        from dwave.graphs import pegasus_graph  # Ocean's successor of dwave-networkx
    except ImportError:
        from dwave_networkx import pegasus_graph

    graph = pegasus_graph(m)
    return graph, {q: set(graph.adj[q]) for q in graph.nodes}


@functools.lru_cache(maxsize=64)
def _clique_chains(m: int, size: int) -> tuple:
    from minorminer.busclique import find_clique_embedding

    embedding = find_clique_embedding(size, _pegasus(m)[0], use_cache=False, seed=0)
    if len(embedding) != size:
        raise ValueError(f"no clique embedding of {size} variables exists on Pegasus P{m}")
    return tuple(tuple(embedding[i]) for i in range(size))


class PegasusCliqueSampler(dimod.Sampler):
    """Sample a BQM through a clique embedding on a Pegasus graph with simulated annealing.

    Example:
        >>> import dimod
        >>> bqm = dimod.BinaryQuadraticModel({0: -1, 1: 1}, {(0, 1): -2}, 0, "BINARY")
        >>> result = PegasusCliqueSampler().sample(bqm, num_reads=5, seed=1)
        >>> float(result.first.energy), "chain_break_fraction" in result.record.dtype.names
        (-2.0, True)

    Args:
        m: Pegasus size parameter (16: Advantage, 5600 qubits).
        chain_strength: Coupling that holds chains together: a number, a function
            ``(bqm, embedding) -> number`` or None for uniform torque compensation with
            prefactor :data:`CHAIN_STRENGTH_PREFACTOR`.
    """

    def __init__(self, m: int = ADVANTAGE_PEGASUS_M, chain_strength=None):
        from dwave.samplers import SimulatedAnnealingSampler

        check_int("m", m, least=2)
        if chain_strength is not None and not callable(chain_strength) and not chain_strength > 0:
            raise ValueError(f"chain_strength must be positive, a function or None, got {chain_strength!r}")
        self.m = int(m)
        self.chain_strength = chain_strength
        self.graph, self._adjacency = _pegasus(self.m)
        self.child = SimulatedAnnealingSampler()
        self.last_embedding_: dict | None = None

    @property
    def properties(self) -> dict:
        return {"topology": {"type": "pegasus", "shape": [self.m]}, "num_qubits": self.graph.number_of_nodes()}

    @property
    def parameters(self) -> dict:
        return {**self.child.parameters, "chain_strength": []}

    def clique_chains(self, size: int) -> list:
        """Chains of a clique embedding of ``size`` variables (computed once per size)."""
        return _clique_chains(self.m, int(size))

    def sample(self, bqm: dimod.BinaryQuadraticModel, chain_strength=None, **parameters) -> dimod.SampleSet:
        """Embed, sample with simulated annealing (``parameters`` go to it), unembed."""
        from dwave.embedding import embed_bqm, majority_vote, unembed_sampleset
        from dwave.embedding.chain_strength import uniform_torque_compensation

        variables = list(bqm.variables)
        embedding = dict(zip(variables, self.clique_chains(len(variables)), strict=True))
        strength = self.chain_strength if chain_strength is None else chain_strength
        if strength is None:
            strength = uniform_torque_compensation(bqm, embedding, prefactor=CHAIN_STRENGTH_PREFACTOR)
        elif callable(strength):
            strength = strength(bqm, embedding)
        embedded = embed_bqm(bqm, embedding, self._adjacency, chain_strength=float(strength))
        physical = self.child.sample(embedded, **parameters)
        result = unembed_sampleset(
            physical, embedding, bqm, chain_break_method=majority_vote, chain_break_fraction=True
        )
        self.last_embedding_ = embedding
        result.info.update(
            chain_strength=float(strength),
            physical_qubits=int(sum(len(c) for c in embedding.values())),
            max_chain_length=int(max(len(c) for c in embedding.values())),
            mean_chain_break_fraction=float(np.mean(result.record.chain_break_fraction)),
        )
        return result
