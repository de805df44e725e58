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
    assert type(resolve_sampler(None)).__name__ .startswith("SteepestDescent")
    assert np.isfinite(resolve_sampler(None).sample_qubo({(0, 0): 1.0}).first.energy)
