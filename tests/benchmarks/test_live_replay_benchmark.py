"""``benchmarks/live_replay.py``: the in-process replay against one settled live worker, with and without a budget."""

from __future__ import annotations

import pytest

from qhpo.curves import read_curve_table
from qhpo.replay import LiveSettings
from repo_scripts import load_script


@pytest.fixture(scope="module")
def live_replay():
    return load_script("benchmarks/live_replay.py", "qhpo_live_replay")


@pytest.mark.parametrize("budget", [None, 5])
def test_one_settled_live_worker_makes_the_replays_decisions(live_replay, curves_dir, budget):
    table = read_curve_table(curves_dir / "taskset_imdb_3.csv")  # diverged rows: their NaN epoch counts too
    live = LiveSettings(settle=True, epoch_seconds=0)
    record = live_replay.compare(table, "qhpo", 1, 30, live, "svr", budget)
    assert record["same"], record
    assert record["resumptions"][0] > 0 and record["pauses"][0] > 0  # freeze-thaw acted on both sides
    if budget is not None:
        assert record["cost"] == [5 * table.epochs, 5 * table.epochs]  # the budget, spent to the epoch


def test_a_budget_needs_the_optuna_backend(live_replay, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["live_replay.py", "--backend", "ray", "--budget", "5"])
    with pytest.raises(SystemExit) as stop:
        live_replay.main()
    assert stop.value.code == 2 and "--budget takes a positive number" in capsys.readouterr().err
