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
