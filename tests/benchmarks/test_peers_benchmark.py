"""``benchmarks/peers.py``: Syne Tune's schedulers on the rows ``qhpo bench`` draws (needs the
``peers`` extra; skipped without it)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from repo_scripts import REPO

pytest.importorskip("syne_tune")


def _peers():
    """The script as a module, registered first (its dataclasses look their module up)."""
    if "qhpo_peers_benchmark" not in sys.modules:
        spec = importlib.util.spec_from_file_location("qhpo_peers_benchmark", REPO / "benchmarks" / "peers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["qhpo_peers_benchmark"]


def _tiny_table():
    from qhpo.curves import read_curve_table, resolve_curve_table

    return read_curve_table(resolve_curve_table("baker_resnet_cifar10")).take(np.arange(60)).truncate(20)


def test_asha_replays_qhpo_bench_rows_in_order_and_stops_early():
    from qhpo.replay import draw_order, run_benchmark, score

    peers = _peers()
    peers.syne_tune()
    table = _tiny_table()
    bench = run_benchmark(table, policies=("none",), predictor="svr", trials=30, seeds=1, first_seed=3, jobs=1)
    rows = draw_order(table.n_trials, 30, 3)
    assert bench["example"]["rows"] == rows.tolist()
    drawn = table.take(rows)
    run = peers.run_peer("asha-stop-3", drawn, peers.build_space(table, drawn), seed=3)
    assert run.started == list(range(30))  # every drawn row, in the drawn order
    assert run.exhausted
    assert run.spent == run.epochs_trained.sum() < 30 * 20  # stopped some trials early
    assert run.complete.any() and np.all(run.epochs_trained[run.complete] == 20)
    assert 0 < score(drawn, run)["cost_fraction"] < 1


def test_the_command_writes_both_modes(tmp_path, capsys):
    peers = _peers()
    out = tmp_path / "peers.json"
    peers.main(
        ["--curves", "cifar10_cnn", "--seeds", "1", "--trials", "12", "--methods", "asha-promote", "--json", str(out)]
    )
    result = json.loads(out.read_text())["tables"]["cifar10_cnn"]["policies"]
    ours, theirs = result["qhpo"], result["asha-promote"]
    budget = ours["per_seed"]["budget"][0]
    assert ours["per_seed"]["epochs"] == [budget]  # qhpo's own epochs are the budget
    assert 0 < theirs["cost_fraction_mean"] < 1
    assert theirs["equal_compute"]["regret_mean"] >= 0
    assert list(theirs["equal_compute"]["regret_at_budget_share"]) == ["0.25", "0.5", "0.75", "1.0"]
    capsys.readouterr()
    peers.main(["--report", str(out)])
    printed = capsys.readouterr().out
    assert "| asha-promote | " in printed and "of 1 tables" in printed


def test_budget_mode_reads_regret_as_qhpo_bench_budget():
    from qhpo.replay import BudgetSettings, budget_order, normalised_regret

    peers = _peers()
    peers.syne_tune()
    table = _tiny_table()  # 60 rows of 20 epochs: 20 trainings start more than 60 trials
    settings = BudgetSettings(20, (), seeds=1, first_seed=2)
    budget = settings.epochs(table)
    pool, rounds = peers.budget_pool(table, budget, 2)
    assert np.array_equal(pool.curves, table.take(budget_order(60, pool.n_trials, 2)).curves, equal_nan=True)
    assert rounds.max() >= 1
    run = peers.run_peer("asha-stop-3", pool, peers.build_space(table, pool, rounds), seed=2, budget=budget)
    assert run.started == list(range(len(run.started)))  # the seed's order, copies of a row included
    assert len(run.started) > 60 and run.spent >= budget and not run.exhausted
    seed = peers.run_budget_seed("asha-stop-3", table, settings, 2)
    finals = pool.sign * pool.final_values
    found = max(finals[row] for spent, row in run.completions if spent <= budget and np.isfinite(finals[row]))
    assert seed.curve[-1] == pytest.approx(normalised_regret(table, np.array([found]))[0])
    assert seed.curve[0] == 1.0 and np.all(np.diff(seed.curve) <= 0)  # nothing found yet; never rising
    assert seed.spent == budget and seed.completed == sum(spent <= budget for spent, _ in run.completions)


def test_the_budget_report_sets_the_peers_beside_qhpo_bench(tmp_path, capsys):
    from qhpo.curves import read_curve_table, resolve_curve_table
    from qhpo.replay import BudgetSettings, run_budget

    peers = _peers()
    out, ours = tmp_path / "peers.json", tmp_path / "qhpo.json"
    peers.main(
        ["--curves", "cifar10_cnn", "--budget", "5", "--seeds", "1", "--methods", "hyperband", "--json", str(out)]
    )
    result = json.loads(out.read_text())["tables"]["cifar10_cnn"]
    assert result["budget_epochs"] == 1000 and result["readings"] == ["5"]
    theirs = result["policies"]["hyperband"]
    assert 0 <= theirs["regret"]["5"] <= 1 and theirs["per_seed"]["5"] == [theirs["regret"]["5"]]
    table = read_curve_table(resolve_curve_table("cifar10_cnn"))
    ours.write_text(json.dumps(run_budget([table], BudgetSettings(5, ("hyperband", "qhpo"), seeds=1), name="builtin")))
    capsys.readouterr()
    peers.main(["--report", str(out), str(ours)])
    printed = capsys.readouterr().out
    assert "| hyperband (Syne Tune) | " in printed and "| hyperband (Optuna) | " in printed  # one name, two methods
    assert "| qhpo | " in printed and "mean over tables" in printed and "of 1 tables" in printed
    with pytest.raises(SystemExit) as ended:
        peers.main(["--curves", "cifar10_cnn", "--budget", "5", "--trials", "10"])
    assert ended.value.code == 2
