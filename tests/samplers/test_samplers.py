"""The sampler registry: names give real dimod samplers; cloud samplers fail in one sentence."""

from __future__ import annotations

import dimod
import numpy as np
import pytest

import qhpo.samplers
from qhpo import QhpoError
from qhpo.samplers import DEFAULT_SAMPLER, SAMPLER_NAMES, make_sampler, resolve_sampler


@pytest.mark.parametrize("name", ["sa", "tabu", "steepest", "exact"])
def test_classical_samplers_find_the_ground_state_of_a_small_qubo(name):
    bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: -1.0, 2: 0.5}, {(0, 1): 2.0, (1, 2): -1.0}, 0.0, "BINARY")
    ground = dimod.ExactSolver().sample(bqm).first.energy
    sampler = make_sampler(name)
    kwargs = {"num_reads": 10} if "num_reads" in sampler.parameters else {}
    assert sampler.sample(bqm, **kwargs).first.energy == pytest.approx(ground)


def test_default_sampler_is_a_registered_name():
    assert isinstance(DEFAULT_SAMPLER, str) and DEFAULT_SAMPLER in SAMPLER_NAMES
    assert hasattr(resolve_sampler(None), "sample")


def test_unknown_name_and_bad_parameters_raise_value_error():
    with pytest.raises(ValueError, match="sampler must be one of"):
        make_sampler("quantum-magic")
    with pytest.raises(ValueError, match="takes no parameters"):
        make_sampler("sa", temperature=3)
    with pytest.raises(ValueError, match="sampler must be a sampler name"):
        resolve_sampler(42)


def test_resolve_passes_sampler_objects_through():
    sampler = dimod.ExactSolver()
    assert resolve_sampler(sampler) is sampler


@pytest.mark.parametrize("name", ["dwave", "hybrid"])
def test_cloud_samplers_without_token_give_one_sentence(name, monkeypatch, tmp_path):
    for var in ("DWAVE_API_TOKEN", "DWAVE_CONFIG_FILE", "DWAVE_PROFILE", "DWAVE_API_ENDPOINT", "DWAVE_API_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(QhpoError) as caught:
        make_sampler(name)
    message = str(caught.value)
    assert "token" in message and "qhpo[qpu]" in message and "\n" not in message


def test_default_sampler_can_be_changed_at_runtime(monkeypatch):
    monkeypatch.setattr(qhpo.samplers, "DEFAULT_SAMPLER", "steepest")
    assert type(resolve_sampler(None)).__name__.startswith("SteepestDescent")
    assert np.isfinite(resolve_sampler(None).sample_qubo({(0, 0): 1.0}).first.energy)


def test_pegasus_sampler_embeds_a_qsvr_qubo_as_a_clique_and_unembeds_it():
    import networkx as nx

    is_valid_embedding = pytest.importorskip(
        "dwave.embedding", reason="the qpu extra (dwave-system) is not installed"
    ).is_valid_embedding

    from qhpo.qsvr import build_svr_qubo

    rng = np.random.default_rng(0)
    bqm = build_svr_qubo(
        rng.random((3, 2)), rng.random(3), K=2, base=0.5, exponent_offset=0.0, epsilon=0.02, xi=0.01, gamma=1.0
    )
    sampler = make_sampler("pegasus-sa")
    result = sampler.sample(bqm, num_reads=50, seed=3)
    embedding = sampler.last_embedding_
    assert is_valid_embedding(embedding, nx.complete_graph(12), sampler.graph)
    assert result.info["physical_qubits"] > 12 and result.info["max_chain_length"] >= 2
    fractions = result.record.chain_break_fraction
    assert np.all((fractions >= 0) & (fractions <= 1))
    samples = {v: result.record.sample[:, i] for i, v in enumerate(result.variables)}
    order = np.column_stack([samples[v] for v in range(12)])
    np.testing.assert_allclose(result.record.energy, bqm.energies((order, range(12))))
    # Single-flip annealing on chains rarely reaches the optimum; it must still beat a(t) = 0.
    assert dimod.ExactSolver().sample(bqm).first.energy <= result.first.energy < 0.0


def test_pegasus_sampler_has_an_advantage_size_clique_for_the_full_qsvr_qubo():
    sampler = make_sampler("pegasus-sa")
    chains = sampler.clique_chains(120)  # K=3, N=20
    assert len(chains) == 120 and len({q for chain in chains for q in chain}) == sum(map(len, chains))
    assert sampler.graph.number_of_nodes() == 5640  # Pegasus P16, the Advantage qubit graph


def test_qsvr_reports_the_chain_break_fraction_of_the_pegasus_path():
    pytest.importorskip("dwave.embedding", reason="the qpu extra (dwave-system) is not installed")
    from qhpo.qsvr import QSVR

    X = np.linspace(0, 1, 4)[:, None]
    model = QSVR(K=2, sampler="pegasus-sa", num_reads=20, random_state=0).fit(X, X[:, 0])
    assert 0.0 <= model.chain_break_fraction_ <= 1.0
    assert QSVR(K=2, sampler="sa", num_reads=5).fit(X, X[:, 0]).chain_break_fraction_ is None


def test_pegasus_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="chain_strength"):
        make_sampler("pegasus-sa", chain_strength=-1.0)
    with pytest.raises(ValueError, match="m must be"):
        make_sampler("pegasus-sa", m=1)


@pytest.fixture(scope="module")
def advantage_mock():
    """dwave-system's MockDWaveSampler with the qubit graph of an Advantage QPU (Pegasus P16)."""
    pytest.importorskip("dwave.system", reason="the qpu extra (dwave-system) is not installed")
    from dwave.system.testing import MockDWaveSampler

    return MockDWaveSampler(topology_type="pegasus", topology_shape=[16])


def test_dwave_sampler_runs_the_qsvr_end_to_end_on_an_advantage_size_mock_qpu(advantage_mock):
    from qhpo.qsvr import QSVR
    from qhpo.samplers._qpu import QpuCliqueSampler

    sampler = make_sampler("dwave", child=advantage_mock)
    assert isinstance(sampler, QpuCliqueSampler) and sampler.clique.largest_clique_size >= 120
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(12, 2))
    y = X[:, 0] + 0.5 * X[:, 1]
    model = QSVR(K=3, sampler=sampler, num_reads=20, random_state=0).fit(X, y)  # 2*K*N = 72 logical variables
    assert sampler.failure_ is None
    assert sampler.chain_strength_ > 0 and 0.0 <= sampler.chain_break_fraction_ <= 1.0
    assert model.chain_break_fraction_ == sampler.chain_break_fraction_
    assert np.all(np.isfinite(model.predict(X)))
    # The embedding is the real clique embedding: every logical variable is a chain of qubits.
    bqm = dimod.BinaryQuadraticModel({i: -1.0 for i in range(20)}, {(i, i + 1): 0.5 for i in range(19)}, 0.0, "BINARY")
    result = sampler.sample(bqm, num_reads=5)
    chains = result.info["embedding_context"]["embedding"]
    assert len(chains) == 20 and all(len(chain) >= 2 for chain in chains.values())
    assert result.info["chain_strength"] == sampler.chain_strength_


def test_a_failing_qpu_falls_back_to_the_classical_annealer_with_one_warning(advantage_mock):
    from dwave.cloud.exceptions import SolverFailureError
    from dwave.system.testing import MockDWaveSampler

    class OfflineSolver(MockDWaveSampler):
        """The same QPU, whose every problem the solver rejects (as an offline or over-quota one does)."""

        def sample(self, bqm, **parameters):
            raise SolverFailureError("solver is offline")

    offline = OfflineSolver(topology_type="pegasus", topology_shape=[16])
    sampler = make_sampler("dwave", child=offline, fallback="sa")
    bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: 1.0}, {(0, 1): -2.0}, 0.0, "BINARY")
    with pytest.warns(RuntimeWarning, match="D-Wave QPU failed .*solver is offline.*classical annealer") as caught:
        first = sampler.sample(bqm, num_reads=10, seed=1)
        second = sampler.sample(bqm, num_reads=10, seed=1)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert isinstance(sampler.failure_, SolverFailureError)
    assert first.first.energy == second.first.energy == -2.0 and len(first) == 10  # the annealer's ground state


def test_dwave_sampler_rejects_connection_parameters_beside_a_child(advantage_mock):
    with pytest.raises(ValueError, match="no connection parameters"):
        make_sampler("dwave", child=advantage_mock, token="x")
    with pytest.raises(ValueError, match="chain_strength"):
        make_sampler("dwave", child=advantage_mock, chain_strength=-2.0)
