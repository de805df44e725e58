"""``benchmarks/live_replay.py``: the in-process replay against one settled live worker, with and without a budget."""

from __future__ import annotations

import pytest

from qhpo.curves import read_curve_table
from qhpo.replay import LiveSettings
from repo_scripts import load_script


@pytest.fixture(scope="module")
def live_replay():
    return load_script("benchmarks/live_replay.py", "qhpo_live_replay")


# taskset tables hold diverged rows (their NaN epoch counts too); on taskset_imdb_2, seed 5, under
# 5 full trainings, row 0 diverges right after its resumption, and row 2 is ranked at a rung
# that row 0 had reached before (the live study saw it twice there until its views left the
# paused trial out)
@pytest.mark.parametrize("name, seed, budget", [("taskset_imdb_3", 1, None), ("taskset_imdb_2", 5, 5)])
def test_one_settled_live_worker_makes_the_replays_decisions(live_replay, curves_dir, name, seed, budget):
    table = read_curve_table(curves_dir / f"{name}.csv")
    live = LiveSettings(settle=True, epoch_seconds=0)
    record = live_replay.compare(table, "qhpo", seed, 30, live, "svr", budget)
    assert record["same"], record
    assert record["resumptions"][0] > 0 and record["pauses"][0] > 0  # freeze-thaw acted on both sides
    if budget is not None:
        assert record["cost"] == [5 * table.epochs, 5 * table.epochs]  # the budget, spent to the epoch


def test_a_budget_needs_the_optuna_backend(live_replay, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["live_replay.py", "--backend", "ray", "--budget", "5"])
    with pytest.raises(SystemExit) as stop:
        live_replay.main()
    assert stop.value.code == 2 and "--budget takes a positive number" in capsys.readouterr().err
