"""The replay simulator, Optuna's pruners in a real study, and Swift-Hyperband's accounting."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.curves import read_curve_table
from qhpo.policies import NoStopping, SwiftHyperband
from qhpo.replay import (
    OptunaPrunerAgent,
    PolicyAgent,
    draw_order,
    optuna_pruner,
    replay_swift_hyperband,
    run_benchmark,
    simulate,
)


@pytest.fixture(scope="module")
def table(curve_table_path):
    return read_curve_table(curve_table_path)


@pytest.mark.parametrize("R, eta, configs, epochs", [(100, 2, 163, 3213), (300, 2, 608, 15380), (50, 2, 84, 1245)])
def test_hyperband_epoch_accounting_matches_the_reference_runs(R, eta, configs, epochs):
    assert SwiftHyperband(max_resource=R, reduction_factor=eta).hyperband_epochs() == (configs, epochs)


def test_hyperband_brackets_for_R_100():
    brackets = SwiftHyperband(max_resource=100, reduction_factor=2).brackets()
    assert [b.n for b in brackets] == [64, 38, 23, 14, 10, 7, 7]
    assert brackets[0].rungs[0] == (64, 2) and brackets[0].rungs[-1] == (1, 100)


def test_plain_hyperband_replay_spends_3213_epochs_on_163_configurations(table):
    curves = table.truncate(100).curves[draw_order(table.n_trials, table.n_trials, 0)]
    out = replay_swift_hyperband(curves, max_resource=100, reduction_factor=2, predictive=False, repeat=False)
    assert out.cost == 3213 and out.used.sum() == 163
    assert out.wallclock == 3213  # one worker, epochs as time


def test_swift_hyperband_saves_epochs_deterministically(table):
    curves = table.truncate(100).curves[draw_order(table.n_trials, table.n_trials, 1)]
    runs = [
        replay_swift_hyperband(curves, max_resource=100, reduction_factor=2, repeat=False, random_state=1)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].epochs_trained, runs[1].epochs_trained)
    assert 2700 < runs[0].cost < 3213 and runs[0].predictions > 0
    plain = replay_swift_hyperband(curves, max_resource=100, reduction_factor=2, predictive=False, repeat=False)
    assert curves[plain.complete, -1].max() - curves[runs[0].complete, -1].max() < 0.01


def test_select_parked_thresholds_then_tops_up():
    rule = SwiftHyperband(max_resource=100, quantile=0.25)
    full = np.array([0.5, 0.6, 0.7, 0.8])  # 25 % best quantile: 0.725
    assert rule.select_parked(np.array([0.9, 0.1, 0.75]), full, 2).tolist() == [0, 2]
    # nobody beats the threshold, but the rung needs 6 survivors: the two best predicted join
    assert rule.select_parked(np.array([0.2, 0.4, 0.3]), full, 6).tolist() == [1, 2]


@pytest.mark.parametrize(
    "bad",
    [
        {"max_resource": 0},
        {"max_resource": True},
        {"max_resource": 100.0},
        {"reduction_factor": 1.0},
        {"min_resource": 200},
        {"d": 1},
        {"known_curve": 1.0},
        {"quantile": 0.0},
    ],
)
def test_swift_hyperband_checks_its_arguments(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        SwiftHyperband(**{"max_resource": 100, **bad})
    assert SwiftHyperband(max_resource=np.int64(100), d=15).max_resource == 100  # numpy integers are integers


def test_simulated_workers_share_the_wall_clock():
    curves = np.tile(np.linspace(0.1, 0.9, 10), (6, 1))
    one = simulate(curves, PolicyAgent(NoStopping(max_epochs=10), curves, [{}] * 6))
    three = simulate(curves, PolicyAgent(NoStopping(max_epochs=10), curves, [{}] * 6), workers=3)
    assert one.wallclock == 60 and three.wallclock == 20 and one.cost == three.cost == 60
    slow = simulate(
        curves,
        PolicyAgent(NoStopping(max_epochs=10), curves, [{}] * 6),
        workers=3,
        seconds_per_epoch=np.array([5.0, 1, 1, 1, 1, 1]),
    )
    assert slow.wallclock == 50  # the slow first trial holds its worker while the others share two


def test_optuna_pruners_run_in_a_real_study(table):
    drawn = table.take(draw_order(table.n_trials, 40, 0))
    for name in ("median", "sha", "hyperband"):
        agent = OptunaPrunerAgent(optuna_pruner(name, drawn.epochs), "max", drawn.epochs, seed=0)
        out = simulate(drawn.curves, agent)
        states = [t.state.name for t in agent.study.trials]
        assert states.count("PRUNED") == int((~out.complete).sum()) > 0
        assert states.count("COMPLETE") == int(out.complete.sum()) > 0
    assert optuna_pruner("median", 200)._n_warmup_steps == 20
    assert optuna_pruner("sha", 200)._min_resource == 10


def test_benchmark_pairs_the_draws_and_reports_the_schema(table):
    result = run_benchmark(table, policies=("none", "sha", "qhpo"), predictor="svr", trials=30, seeds=2, sweep_seeds=1)
    assert set(result) >= {"table", "trials", "seeds", "workers", "policies"}
    for name in ("none", "sha", "qhpo"):
        assert set(result["policies"][name]) >= {
            "cost_fraction_mean",
            "regret_mean",
            "regret_median",
            "regret_max",
            "top1_kept_rate",
            "wallclock_mean",
            "predictor_seconds_mean",
        }
    none = result["policies"]["none"]
    assert none["cost_fraction_mean"] == 1.0 and none["regret_max"] == 0.0 and none["top1_kept_rate"] == 1.0
    assert result["policies"]["sha"]["cost_fraction_mean"] < 0.5
    assert result["policies"]["qhpo"]["predictor_seconds_mean"] >= 0
    assert [p["value"] for p in result["sweeps"]["lines"]["sha"]] == [2, 3, 4]
    assert draw_order(167, 30, 4).tolist() == draw_order(167, 30, 4).tolist()
    assert len(set(draw_order(167, 100, 4).tolist())) == 100  # without replacement


class _StopRowAt:
    """Continues every trial except ``row``, which it stops at ``epoch``; logs the starts."""

    def __init__(self, row, epoch):
        self.row, self.epoch, self.starts, self.now = row, epoch, [], 0

    def start(self, index):
        self.starts.append(index)

    def report(self, index, epoch, value):
        return not (index == self.row and epoch == self.epoch)

    def finish(self, index, status):
        pass

    def promote(self, limit, more_trials=False):
        return []

    def resume(self, index):
        pass


def test_a_worker_freed_while_others_continue_takes_the_next_trial_at_once():
    curves = np.tile(np.linspace(0.1, 0.5, 5), (3, 1))
    out = simulate(curves, _StopRowAt(0, 2), workers=2)
    # row 0 stops at t=2; row 1 continues at t=2 in the same instant; row 2 must start at
    # t=2 on the freed worker and end at t=7 (not wait for row 1 to end at t=5).
    assert out.wallclock == 7
    assert list(out.epochs_trained) == [2, 5, 5]
