"""The replay's oracle predictor answers with the recorded values, and only the replay offers it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from qhpo.cli import main
from qhpo.curves import CurveTable
from qhpo.optuna import PredictivePruner
from qhpo.policies import PredictionService, make_policy
from qhpo.predictors import ORACLE_REFUSAL
from qhpo.replay import PolicyAgent, draw_order, replay_rule, simulate
from qhpo.replay._oracle import OracleService


def _table(mode: str, n: int = 40, epochs: int = 20, seed: int = 0) -> CurveTable:
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.05, 0.5, n)
    level = rng.uniform(0.3, 0.9, n)
    curves = level[:, None] * (1 - np.exp(-rate[:, None] * np.arange(1, epochs + 1)))
    curves += rng.normal(0, 0.01, curves.shape)
    if mode == "min":
        curves = 2.0 - curves
    params = {"rate": rate, "level": level}
    return CurveTable("synthetic", "metric", mode, np.arange(n), params, curves)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_the_oracle_returns_the_recorded_value_in_the_units_of_the_prefix(mode):
    table = _table(mode)
    oracle = OracleService(table.curves, mode=mode)
    keys = [3, 0, 17]
    raw = table.curves[keys, :4]
    mean, std = oracle.predict(4, raw, keys=keys, target=12)
    np.testing.assert_array_equal(mean, table.curves[keys, 11])  # the recorded metric
    np.testing.assert_array_equal(std, 0.0)
    # "higher is better" prefixes floored as qhpo's halving rules floor them: the same truth, signed
    floored = np.maximum(table.sign * raw, np.quantile(table.sign * raw, 0.5))
    mean, _ = oracle.predict(4, floored, keys=keys)
    np.testing.assert_array_equal(mean, table.sign * table.curves[keys, -1])


def test_a_row_that_diverged_before_the_target_ranks_last():
    curves = np.array([[0.5, 0.6, np.nan], [0.4, 0.5, 0.55]])
    mean, _ = OracleService(curves, mode="min").predict(2, curves[:, :2], keys=[0, 1])
    assert mean[0] == np.inf and mean[1] == 0.55  # the worst loss, and the recorded one


@pytest.mark.parametrize("mode", ["max", "min"])
def test_the_default_rule_reads_the_recorded_value_at_its_horizon(mode):
    table = _table(mode, n=60)
    drawn = table.take(draw_order(table.n_trials, 60, 3))
    policy = make_policy(
        "qhpo", max_epochs=drawn.epochs, mode=mode, random_state=3, service=OracleService(drawn.curves, mode=mode)
    )
    agent = PolicyAgent(policy, drawn.curves, drawn.param_rows())
    simulate(drawn.curves, agent)
    read = [r for r in agent.resumptions if r.predicted is not None]
    assert read, "no resumption read a prediction"
    for resumption in read:
        horizon = int(re.search(r"predicted value at epoch (\d+)", resumption.reason).group(1))
        assert resumption.predicted == drawn.curves[int(resumption.key), horizon - 1]
        assert resumption.std == 0.0


def test_bench_replays_with_the_oracle_and_it_decides_otherwise_than_the_svr():
    table = _table("max", n=80, epochs=20, seed=1)
    drawn = table.take(draw_order(table.n_trials, 80, 0))
    by = {p: replay_rule("qhpo-stop", drawn, seed=0, predictor=p) for p in ("svr", "oracle")}
    assert by["oracle"].predictor_seconds == 0.0
    assert not np.array_equal(by["svr"].epochs_trained, by["oracle"].epochs_trained)
    again = replay_rule("qhpo-stop", drawn, seed=0, predictor="oracle")
    np.testing.assert_array_equal(again.epochs_trained, by["oracle"].epochs_trained)
    swift = replay_rule("swift-hyperband", drawn, seed=0, predictor="oracle")
    assert swift.epochs_trained.sum() > 0


def test_outside_the_replay_the_oracle_is_refused_in_one_sentence(capsys):
    for build in (
        lambda: make_policy("qhpo", max_epochs=10, predictor="oracle"),
        lambda: PredictionService("oracle"),
        lambda: PredictivePruner(predictor="oracle"),
    ):
        with pytest.raises(ValueError, match="exists only in qhpo bench"):
            build()
    assert ORACLE_REFUSAL.count(".") == 1 and "\n" not in ORACLE_REFUSAL


def test_bench_accepts_the_oracle_on_the_command_line(tmp_path, capsys):
    table = _table("max", n=30, epochs=10)
    csv = tmp_path / "tiny.csv"
    header = "trial,rate,level," + ",".join(f"epoch_{e}" for e in range(1, 11))
    rows = [
        ",".join(
            [str(i), f"{table.params['rate'][i]:.6f}", f"{table.params['level'][i]:.6f}"] + [f"{v:.6f}" for v in c]
        )
        for i, c in enumerate(table.curves)
    ]
    csv.write_text(header + "\n" + "\n".join(rows) + "\n")
    (tmp_path / "tiny.json").write_text(
        '{"metric": "accuracy", "mode": "max", "epochs": 10, "trials": 30, "description": "d", '
        '"source": "s", "license": "MIT"}'
    )
    code = main(["bench", "--curves", str(csv), "--policies", "qhpo", "--predictor", "oracle", "--seeds", "1"])
    assert code == 0
    assert "predictor oracle" in capsys.readouterr().out


def test_the_final_oracle_answers_with_the_final_value_whatever_is_asked():
    table = _table("min")
    oracle = OracleService(table.curves, mode="min", final=True)
    mean, _ = oracle.predict(3, table.curves[:2, :3], keys=[0, 1], target=5)
    np.testing.assert_array_equal(mean, table.curves[:2, -1])
    drawn = table.take(draw_order(table.n_trials, 40, 1))
    by = {p: replay_rule("qhpo-stop", drawn, seed=1, predictor=p) for p in ("oracle", "oracle-final")}
    assert all(r.predictor_seconds == 0.0 for r in by.values())
