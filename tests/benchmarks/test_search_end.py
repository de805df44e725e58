"""``benchmarks/search_end.py``: finishing the best paused trials when a search without a budget ends."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.curves import read_curve_table
from qhpo.replay import run_benchmark
from repo_scripts import load_script


@pytest.fixture(scope="module")
def search_end():
    return load_script("benchmarks/search_end.py", "qhpo_search_end")


def test_without_an_end_it_is_qhpo_bench_and_an_end_spends_more_to_finish_a_paused_trial(search_end, curves_dir):
    table = read_curve_table(curves_dir / "taskset_imdb_1.csv")
    result = run_benchmark(table, policies=("qhpo",), trials=40, seeds=2, first_seed=100, predictor="svr")
    bench = result["policies"]["qhpo"]["per_seed"]
    plain = [search_end.replay_seed(table, s, 40, 0) for s in (100, 101)]
    np.testing.assert_allclose([c for c, _ in plain], bench["cost_fraction"], atol=1e-9)
    np.testing.assert_allclose([r for _, r in plain], bench["regret"], atol=1e-9)
    ended = [search_end.replay_seed(table, s, 40, 1) for s in (100, 101)]
    for (c0, r0), (c1, r1) in zip(plain, ended, strict=True):
        assert c1 > c0 and r1 <= r0  # one more trial trained on, none of the finished ones lost


def test_bad_arguments_exit_2(search_end):
    with pytest.raises(SystemExit) as stop:
        search_end.main(["--finish", "-1"])
    assert stop.value.code == 2
