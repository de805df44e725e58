"""The search space: the default, TOML files, Optuna suggestions and random samples."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import optuna
import pytest

from qhpo import QhpoError
from qhpo.workload import SearchSpace, default_search_space


def test_default_space_is_the_reference_space():
    space = default_search_space()
    assert space.names == ("num_layers", "num_filters", "batch_size", "learning_rate", "momentum")
    assert space["num_layers"].choices == (2, 3, 4)
    assert space["num_filters"].choices == (16, 32, 48, 64)
    assert space["batch_size"].choices == (64, 128, 256, 512)
    lr, momentum = space["learning_rate"], space["momentum"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1.0, True)
    assert (momentum.kind, momentum.low, momentum.high, momentum.log) == ("float", 1e-4, 0.9, True)
    shipped = resources.files("qhpo") / "data" / "default_space.toml"
    assert SearchSpace.from_toml(shipped) == space


def test_sample_is_seeded_in_bounds_and_log_uniform():
    space = default_search_space()
    assert space.sample(5) == space.sample(np.random.default_rng(5))
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(2000)]
    assert {d["num_layers"] for d in draws} == {2, 3, 4}
    assert all(isinstance(d["batch_size"], int) for d in draws)
    rates = np.array([d["learning_rate"] for d in draws])
    assert rates.min() >= 1e-4 and rates.max() <= 1.0
    # Log-uniform on [1e-4, 1]: half the mass lies below the geometric middle 1e-2.
    assert abs(np.mean(rates < 1e-2) - 0.5) < 0.05


def test_suggest_through_an_optuna_study_round_trips(tmp_path):
    space = default_search_space()
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="space")
    trial = study.ask()
    config = space.suggest(trial)
    assert config == trial.params and set(config) == set(space.names)
    study.tell(trial, 0.5)
    assert study.trials[0].distributions == space.distributions()


def test_toml_with_ranges_steps_and_fixed_values(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        """
[parameters.num_layers]
low = 2
high = 4
[parameters.num_filters]
low = 16
high = 64
step = 16
[parameters.batch_size]
value = 128
[parameters.learning_rate]
low = 0.001
high = 0.1
log = true
[parameters.momentum]
type = "float"
low = 0
high = 0.9
"""
    )
    space = SearchSpace.from_toml(path)
    assert [p.kind for p in space.parameters] == ["int", "int", "fixed", "float", "float"]
    assert space.fixed_values() == {"batch_size": 128}
    assert "batch_size" not in space.distributions()
    rng = np.random.default_rng(1)
    for _ in range(200):
        config = space.sample(rng)
        assert config["num_filters"] in (16, 32, 48, 64) and config["batch_size"] == 128
        assert 2 <= config["num_layers"] <= 4 and 0 <= config["momentum"] <= 0.9
    study = optuna.create_study()
    trial = study.ask()
    config = space.suggest(trial)
    assert config["batch_size"] == 128 and config["num_filters"] % 16 == 0


GOOD = {
    "num_layers": "choices = [2, 3]",
    "num_filters": "choices = [16]",
    "batch_size": "choices = [64]",
    "learning_rate": "low = 0.001\nhigh = 0.1\nlog = true",
    "momentum": "value = 0.9",
}


def _space_file(tmp_path, **override):
    tables = {**GOOD, **override}
    text = "\n".join(f"[parameters.{name}]\n{body}" for name, body in tables.items() if body is not None)
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (dict(momentum=None), "lacks parameter(s) 'momentum'"),
        (dict(dropout="value = 0.1"), "unknown parameter(s) 'dropout'"),
        (dict(num_filters="choices = []"), "'num_filters'"),
        (dict(num_filters="choices = 16"), "as a list"),
        (dict(num_filters="choices = [16]\nlow = 1"), "exactly one of"),
        (dict(learning_rate="low = 0.1\nhigh = 0.01"), "must not exceed high"),
        (dict(learning_rate="low = 0\nhigh = 0.1\nlog = true"), "must be positive"),
        (dict(learning_rate="low = 0.001"), "no high"),
        (dict(learning_rate="low = 0.001\nhigh = 0.1\nlog = 'yes'"), "log = true or false"),
        (dict(learning_rate="low = 0.001\nhigh = 0.1\nscale = 2"), "unknown key(s) scale"),
        (dict(learning_rate="low = 0.001\nhigh = 0.1\ntype = 'complex'"), "type = 'complex'"),
        (dict(num_layers="low = 2\nhigh = 4\nstep = 0.5"), "step of integer parameter"),
        (dict(num_layers="low = 2\nhigh = 4\nlog = true\nstep = 1"), "both log = true and a step"),
    ],
)
def test_bad_space_files_give_one_clear_sentence(tmp_path, override, expected):
    path = _space_file(tmp_path, **override)
    with pytest.raises(QhpoError) as caught:
        SearchSpace.from_toml(path)
    message = str(caught.value)
    assert expected in message, message
    assert str(path) in message and "\n" not in message and message.endswith(".")


def test_unreadable_space_files(tmp_path):
    with pytest.raises(QhpoError, match="does not exist"):
        SearchSpace.from_toml(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[parameters.num_layers\nchoices = [2]")
    with pytest.raises(QhpoError, match="not valid TOML"):
        SearchSpace.from_toml(broken)
    flat = tmp_path / "flat.toml"
    flat.write_text("num_layers = [2, 3]")
    with pytest.raises(QhpoError, match=r"no \[parameters\] table"):
        SearchSpace.from_toml(flat)


def test_any_names_when_not_tied_to_the_trainer(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("[parameters.dropout]\nlow = 0.0\nhigh = 0.5\n")
    space = SearchSpace.from_toml(path, required=None)
    value = space.sample(0)["dropout"]
    assert 0.0 <= value <= 0.5 and not math.isnan(value)
