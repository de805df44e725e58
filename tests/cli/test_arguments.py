"""One rule for integer arguments across the public API: an int or a NumPy integer; never True or 3.0."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.optuna import PredictivePruner, pruner_defaults
from qhpo.policies import PredictionService, SwiftHyperband, make_policy
from qhpo.qsvr import build_svr_qubo
from qhpo.replay import BenchmarkSettings, check_workers
from qhpo.samplers import make_sampler

BUILDERS = {
    "max_epochs": lambda v: make_policy("none", max_epochs=v),
    "min_completed": lambda v: make_policy("poster", max_epochs=20, min_completed=v),
    "min_curves": lambda v: PredictionService("svr", min_curves=v),
    "step": lambda v: PredictionService("svr", step=v),
    "max_resource": lambda v: SwiftHyperband(max_resource=v),
    "epochs": lambda v: pruner_defaults("sha", v),
    "K": lambda v: build_svr_qubo(
        np.eye(2), np.zeros(2), K=v, base=0.5, exponent_offset=0.0, epsilon=0.1, xi=0.01, gamma=0.1
    ),
    "num_reads": lambda v: make_sampler("qhpo-sa").sample_qubo({(0, 0): -1.0}, num_reads=v),
    "trials": lambda v: BenchmarkSettings.of(trials=v),  # 2.5 trials was once truncated to 2
    "seeds": lambda v: BenchmarkSettings.of(seeds=v),
    "workers": lambda v: check_workers(v),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("bad", [True, 3.0, 0])
def test_integer_arguments_refuse_bools_floats_and_out_of_range(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be an integer"):
        BUILDERS[name](bad)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_integer_arguments_take_numpy_integers(name):
    BUILDERS[name](np.int64(3))


def test_pruner_max_epochs_follows_the_rule():
    with pytest.raises(ValueError, match="max_epochs must be an integer"):
        PredictivePruner("qhpo", max_epochs=20.0)
    assert PredictivePruner("qhpo", max_epochs=np.int32(20)).max_epochs == 20
